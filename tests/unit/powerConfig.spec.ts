/** Power config: PDUs shared by hosts, drivers of a host's own, lifecycle defaults, clear problems, secrets masked. */
import { expect, test } from '@playwright/test';

import { defineLab, env } from '../../src/config/defineLab.js';
import type { RemoteHost } from '../../src/host/remoteHost.js';
import { redact } from '../../src/util/secrets.js';
import { configProblem as problem } from '../helpers/configProblem.js';

const users = { root: { password: 'power-unit-password' } };

test('hosts name a PDU of the lab or bring a driver of their own; lifecycle gets defaults, and lab defaults merge in', () => {
  const lab = defineLab({
    defaults: { lifecycle: { upTimeout: 90_000 } },
    pdus: {
      rack1: { driver: 'http', baseUrl: 'http://pdu.lab/api', on: 'outlets/{outlet}/on', off: 'outlets/{outlet}/off', state: 'outlets/{outlet}' },
    },
    hosts: {
      dut1: { address: '10.0.0.1', users, power: { pdu: 'rack1', outlet: 3 } },
      dut2: { address: '10.0.0.2', users, power: { pdu: 'rack1', outlet: 'B4' }, lifecycle: { recover: 'power-cycle', rebootCommand: 'sudo reboot' } },
      vm: { address: '127.0.0.1', users, power: { driver: 'qemu', socket: '/run/vm.qmp' } },
    },
  });
  expect(lab.hosts.dut1!.power).toMatchObject({ pdu: 'rack1', own: false, outlet: '3', driver: { driver: 'http', timeout: 30_000, cycleDelay: 2_000 } });
  expect(lab.hosts.dut2!.power?.outlet).toBe('B4');
  expect(lab.hosts.dut1!.power!.driver).toBe(lab.pdus.rack1);
  const rack = lab.pdus.rack1!;
  expect(rack.driver === 'http' && rack.on).toEqual({ method: 'POST', url: 'outlets/{outlet}/on', body: undefined, headers: {} });
  expect(rack.driver === 'http' && rack.state?.method).toBe('GET');
  expect(lab.hosts.vm!.power).toMatchObject({ pdu: 'vm', own: true, outlet: undefined, driver: { driver: 'qemu', socket: '/run/vm.qmp', timeout: 10_000 } });
  expect(lab.hosts.dut1!.lifecycle).toMatchObject({ rebootCommand: 'reboot', upTimeout: 90_000, downTimeout: 60_000, recover: 'none', healthCheck: 'true' });
  expect(lab.hosts.dut2!.lifecycle).toMatchObject({ rebootCommand: 'sudo reboot', recover: 'power-cycle', upTimeout: 90_000 });
});

test('a recovery function is kept as given, and receives a RemoteHost (typed)', () => {
  const recover = async (host: RemoteHost) => {
    await host.reboot({ hard: true });
  };
  // The lab file's own form: the parameter is typed as a RemoteHost without an annotation.
  const inline = defineLab({ hosts: { dut1: { address: 'x', users, lifecycle: { recover: async (host) => void (await host.power('cycle')) } } } });
  const lab = defineLab({ hosts: { dut1: { address: 'x', users, lifecycle: { recover } } } });
  expect(lab.hosts.dut1!.lifecycle.recover).toBe(recover);
  expect(typeof inline.hosts.dut1!.lifecycle.recover).toBe('function');
});

const cases: [string, unknown, RegExp][] = [
  [
    'unknown PDU',
    { pdus: { rack1: { driver: 'qemu', socket: '/s' } }, hosts: { dut1: { address: 'x', users, power: { pdu: 'rakc1' } } } },
    /host "dut1" → power → pdu: names "rakc1", which is not a PDU of this lab \(did you mean "rack1"\?\); known PDUs: rack1/,
  ],
  ['unknown driver', { pdus: { rack1: { driver: 'snmp' } } }, /pdu "rack1" → driver: "snmp" is not a power driver; expected one of "qemu", "command", "http"/],
  [
    'misspelt driver',
    { hosts: { vm: { address: 'x', users, power: { driver: 'qmeu', socket: '/s' } } } },
    /host "vm" → power → driver: "qmeu" is not a power driver.*\(did you mean "qemu"\?\)/,
  ],
  ['missing template', { pdus: { relay: { driver: 'command', on: 'relay on' } } }, /pdu "relay" → off: missing, a string is required/],
  [
    'misspelt field',
    { pdus: { relay: { driver: 'command', on: 'a', off: 'b', runon: 'bastion' } } },
    /pdu "relay" → runon: unknown field \(did you mean "runOn"\?\); known fields here: driver, on, off/,
  ],
  [
    'unknown runOn host',
    { pdus: { relay: { driver: 'command', on: 'a', off: 'b', runOn: 'bastoin' } }, hosts: { bastion: { address: 'x', users } } },
    /pdu "relay" → runOn: names "bastoin", which is not a host of this lab \(did you mean "bastion"\?\)/,
  ],
  [
    'bad outlet',
    { pdus: { p: { driver: 'qemu', socket: '/s' } }, hosts: { dut1: { address: 'x', users, power: { pdu: 'p', outlet: -1 } } } },
    /host "dut1" → power → outlet: expected/,
  ],
  ['bad recover', { hosts: { dut1: { address: 'x', users, lifecycle: { recover: 'reset' } } } }, /host "dut1" → lifecycle\.recover: expected/],
  [
    'bad state pattern',
    { pdus: { p: { driver: 'http', on: 'http://x/on', off: 'http://x/off', stateOn: '(' } } },
    /pdu "p" → stateOn: not a valid regular expression/,
  ],
];
for (const [name, input, expected] of cases) {
  test(`config problem: ${name}`, () => {
    expect(problem(input)).toMatch(expected);
  });
}

test('secrets of power drivers are masked from the moment the lab is defined, config errors included', () => {
  process.env.LW_PDU_TOKEN = 'pdu-token-from-env-4711';
  process.env.LW_IPMI_PW = 'ipmi-secret-0815';
  defineLab({
    pdus: {
      rest: {
        driver: 'http',
        on: 'http://pdu/on',
        off: 'http://admin:url-pass%2Fword@pdu/off',
        auth: { user: 'admin', password: 'basic-secret-42' },
        headers: { 'X-Api-Key': env('LW_PDU_TOKEN'), Accept: 'application/json' },
      },
      bmc: { driver: 'command', on: 'ipmitool -E power on', off: 'ipmitool -E power off', env: { IPMI_PASSWORD: env('LW_IPMI_PW'), IPMI_HOST: '10.0.0.9' } },
      bearer: { driver: 'http', on: 'http://pdu/on', off: 'http://pdu/off', auth: { bearer: 'bearer-secret-1234' } },
    },
  });
  const text =
    'pdu-token-from-env-4711 ipmi-secret-0815 basic-secret-42 bearer-secret-1234 url-pass/word url-pass%2Fword ' +
    Buffer.from('admin:basic-secret-42').toString('base64');
  expect(redact(text)).not.toMatch(/4711|0815|-42|1234|url-pass|YWRtaW46/);
  // Ordinary values stay readable.
  expect(redact('10.0.0.9 application/json')).toBe('10.0.0.9 application/json');
  // A misplaced secret in an invalid PDU is never shown.
  const message = problem({
    pdus: { bad: { driver: 'http', on: 'http://pdu/on', off: 'http://pdu/off', auth: { user: 'admin', password: 'misplaced-pw-777', extra: 1 } } },
  });
  expect(message).toMatch(/pdu "bad" → auth/);
  expect(message).not.toContain('misplaced-pw-777');
});
