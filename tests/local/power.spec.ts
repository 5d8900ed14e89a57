/**
 * Power control on the runner, with real processes and a real HTTP server: the command
 * driver (a relay script), the HTTP driver (a REST PDU with token auth), what calls do
 * while a host is off or booting, waiting for a host that does not come back, one PDU's
 * actions serialised across hosts, and secrets of the drivers never in any message.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import type { LabInput } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import { HostUnavailableError, PowerError } from '../../src/util/errors.js';
import { testLab } from '../helpers/labs.js';
import { closedPort } from '../helpers/net.js';
import { startPduServer } from '../helpers/pduServer.js';

const users = { root: { password: 'local-power-password' } };

/** A relay script: `relay.sh <outlet> on|off|state`, state kept in files; outlet 9 does not exist. */
function relayScript(): { script: string; dir: string; state: (outlet: string) => string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-relay-'));
  const script = path.join(dir, 'relay.sh');
  writeFileSync(
    script,
    `#!/bin/sh
set -e
[ "$1" = 9 ] && { echo "relay $1: no such outlet" >&2; exit 3; }
f="${dir}/outlet-$1"
case "$2" in
  on|off) echo "$2" > "$f"; echo "$2 $(date +%s%N)" >> "${dir}/log" ;;
  state) echo "outlet $1 is $(cat "$f" 2>/dev/null || echo off)" ;;
  *) exit 2 ;;
esac
`,
  );
  chmodSync(script, 0o755);
  return { script, dir, state: (outlet) => readFileSync(path.join(dir, `outlet-${outlet}`), 'utf8').trim() };
}

async function host(overrides: Partial<HostInput>, lab: Omit<LabInput, 'hosts'> = {}) {
  const port = await closedPort();
  const input: LabInput = { ...lab, hosts: { dut1: { address: '127.0.0.1', users, ssh: { port, connectTimeout: 1_000 }, ...overrides } as HostInput } };
  const { lab: running, events } = testLab(input);
  return { lab: running, events, dut: running.remote('dut1') };
}

const powerLines = (events: ReturnType<typeof testLab>['events']) =>
  events.flatMap((e) => (e.type === 'power' ? [`${e.text}${e.error ? ` FAILED — ${e.error}` : ''}`] : []));

test('command driver on the runner: state, off, on and cycle switch the relay; each action is in the transcript', async () => {
  const relay = relayScript();
  const { dut, events } = await host(
    { power: { pdu: 'relay', outlet: 4 } },
    {
      pdus: {
        relay: {
          driver: 'command',
          on: `${relay.script} {outlet} on`,
          off: `${relay.script} {outlet} off`,
          state: `${relay.script} {outlet} state`,
          cycleDelay: 10,
        },
      },
    },
  );
  expect(await dut.power('state')).toBe('off');
  expect(await dut.power('on')).toBe('on');
  expect(relay.state('4')).toBe('on');
  expect(await dut.power('state')).toBe('on');
  expect(await dut.power('off')).toBe('off');
  expect(relay.state('4')).toBe('off');
  expect(dut.state).toBe('off');
  await dut.power('on');
  await dut.power('cycle');
  // A cycle without a command of its own is off, then on.
  expect(
    readFileSync(path.join(relay.dir, 'log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ')[0]),
  ).toEqual(['on', 'off', 'on', 'off', 'on']);
  const lines = powerLines(events);
  expect(lines).toContainEqual(expect.stringMatching(/^state: outlet 4 of PDU "relay" \(command\) → off · \d+ ms$/));
  expect(lines).toContainEqual(expect.stringMatching(/^cycle: outlet 4 of PDU "relay" \(command\) · [\d.]+ m?s$/));
  expect(lines).toContainEqual('dut1 goes down: powered off by host.power("off")');
});

test('command driver failures name the host, the driver, the outlet and what the command said; a hung command is cut at the bound', async () => {
  const relay = relayScript();
  const { dut, events } = await host(
    { power: { pdu: 'relay', outlet: 9 } },
    { pdus: { relay: { driver: 'command', on: `${relay.script} {outlet} on`, off: `${relay.script} {outlet} off`, state: 'sleep 30', timeout: 500 } } },
  );
  const error = await dut.power('on').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PowerError);
  expect((error as Error).message).toBe(
    `dut1 (power): on of outlet 9 of PDU "relay" (command) failed: the command "${relay.script} '9' on" on the runner failed: exit status 3; it said "relay 9: no such outlet". Run the command by hand to check it, and the PDU it talks to.`,
  );
  expect(powerLines(events)).toContainEqual(expect.stringMatching(/^on: outlet 9 of PDU "relay" \(command\) FAILED — dut1 \(power\): on of outlet 9/));
  await expect(dut.power('state')).rejects.toThrow(
    /^dut1 \(power\): state of outlet 9 of PDU "relay" \(command\) did not finish: the PDU's 500 ms timeout was exceeded/,
  );
});

test('powered off: every call fails at once saying so; powered on: calls fail as booting until the host is back; a host that does not come back fails within the bound', async () => {
  const relay = relayScript();
  const { dut, events } = await host(
    { power: { pdu: 'relay', outlet: 1 }, lifecycle: { upTimeout: 1_500, pollInterval: 200 } },
    { pdus: { relay: { driver: 'command', on: `${relay.script} {outlet} on`, off: `${relay.script} {outlet} off` } } },
  );
  await dut.power('off');
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['exec', () => dut.exec('true')],
    ['run', () => dut.run('true')],
    ['send', () => dut.send('x\n')],
    ['openSession', () => dut.openSession('side')],
    ['put', () => dut.put(relay.script, '/tmp/x')],
    ['forwardLocal', () => dut.forwardLocal('127.0.0.1', 80)],
  ];
  for (const [name, call] of calls) {
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, name).toBeInstanceOf(HostUnavailableError);
    expect((error as Error).message, name).toMatch(
      /^dut1: dut1 is powered off \(powered off by host\.power\("off"\), \d+ ms ago\)\. Power it on with host\.power\("on"\), then wait with host\.waitUntilUp\(\)\.$/,
    );
  }
  await expect(dut.waitUntilUp()).rejects.toThrow(/dut1 is powered off/);
  await dut.power('on');
  expect(dut.state).toBe('rebooting');
  await expect(dut.exec('true')).rejects.toThrow(/^dut1: dut1 is rebooting \(booting after host\.power\("on"\), \d+ ms ago\)/);
  // Nothing listens on its SSH port: it never comes back.
  const error = await dut.waitUntilUp().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HostUnavailableError);
  expect((error as Error).message).toMatch(/^dut1: dut1 did not come back within 1\.50 s: ssh refused \(\d+ attempts\)\. Check the device/);
  expect(powerLines(events)).toContainEqual(expect.stringMatching(/^waiting for dut1: ssh refused, \d+ s$/));
  expect(dut.state).toBe('down');
  await expect(dut.run('true')).rejects.toThrow(/^dut1: dut1 did not come back: .*did not come back within 1\.50 s/);
});

test('a host without power control says so when asked for a hard reboot', async () => {
  const { dut } = await host({});
  await expect(dut.reboot({ hard: true })).rejects.toThrow(
    /^dut1 \(power\): dut1 has no power control, so it cannot be power-cycled\. Add power: \{ pdu, outlet \}/,
  );
  expect(dut.state).toBe('up');
  await expect(dut.power('state')).rejects.toThrow(/has no power control, so it cannot be asked for its power state/);
});

test('HTTP driver against a REST PDU: token auth, templated URLs, state from the body; errors say what the PDU answered', async () => {
  const token = 'pdu-bearer-token-31337';
  process.env.LW_TEST_PDU_TOKEN = token;
  const pdu = await startPduServer({ token, outlets: { '3': 'off', 'A 1': 'on' } });
  try {
    const actions = {
      on: 'outlets/{outlet}/on',
      off: 'outlets/{outlet}/off',
      cycle: 'outlets/{outlet}/cycle',
      state: 'outlets/{outlet}',
      stateOn: '"state":"on"',
      stateOff: '"state":"off"',
    };
    const { lab } = testLab({
      pdus: { rack: { driver: 'http', baseUrl: pdu.url, auth: { bearer: { env: 'LW_TEST_PDU_TOKEN' } }, ...actions } },
      hosts: {
        dut1: { address: '127.0.0.1', users, power: { pdu: 'rack', outlet: 3 } },
        spaced: { address: '127.0.0.1', users, power: { pdu: 'rack', outlet: 'A 1' } },
        missing: { address: '127.0.0.1', users, power: { pdu: 'rack', outlet: 12 } },
      },
    });
    const dut = lab.remote('dut1');
    expect(await dut.power('state')).toBe('off');
    await dut.power('on');
    expect(pdu.outlets.get('3')).toBe('on');
    await dut.power('cycle');
    expect(await lab.remote('spaced').power('state')).toBe('on');
    expect(pdu.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/outlets/3',
      'POST /api/outlets/3/on',
      'POST /api/outlets/3/cycle',
      'GET /api/outlets/A%201',
    ]);
    expect(pdu.requests.every((r) => r.authorised)).toBe(true);
    await expect(lab.remote('missing').power('on')).rejects.toThrow(
      `missing (power): on of outlet 12 of PDU "rack" (http) failed: POST ${pdu.url}/outlets/12/on answered HTTP 404 Not Found: "{\\"error\\":\\"no outlet 12\\"}". Check the request templates against the PDU's API.`,
    );
  } finally {
    await pdu.close();
  }
});

test("the HTTP driver's secrets never reach a message, an event or a transcript, even when the PDU echoes them", async () => {
  const token = 'echoed-bearer-token-2718';
  const pdu = await startPduServer({ token: 'another-token', outlets: { '1': 'on' }, onSwitch: async () => {} });
  try {
    const { lab, events } = testLab({
      pdus: { rack: { driver: 'http', baseUrl: pdu.url, auth: { bearer: token }, on: 'outlets/{outlet}/on', off: 'outlets/{outlet}/off' } },
      hosts: { dut1: { address: '127.0.0.1', users, power: { pdu: 'rack', outlet: 1 } } },
    });
    const error = (await lab
      .remote('dut1')
      .power('on')
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as PowerError | undefined;
    expect(error).toBeInstanceOf(PowerError);
    // The PDU answered 401 with the Authorization header it got in its body.
    expect(error!.message).toContain('answered HTTP 401 Unauthorized: "{\\"error\\":\\"unauthorized\\",\\"got\\":\\"Bearer ******\\"}"');
    expect(error!.message).toContain('Check the credentials of the PDU');
    const everything = JSON.stringify({ message: error!.message, stack: error!.stack, events });
    expect(everything).not.toContain(token);
    expect(powerLines(events).join('\n')).toContain('Bearer ******');
  } finally {
    await pdu.close();
  }
});

test('one PDU shared by hosts: their power actions never overlap', async () => {
  const token = 'serial-token-5150';
  const pdu = await startPduServer({ token, delayMs: 50, outlets: { '1': 'on', '2': 'on', '3': 'on', '4': 'on' } });
  try {
    const hosts = Object.fromEntries([1, 2, 3, 4].map((n) => [`dut${n}`, { address: '127.0.0.1', users, power: { pdu: 'rack', outlet: n } }]));
    const { lab } = testLab({
      pdus: {
        rack: {
          driver: 'http',
          baseUrl: pdu.url,
          auth: { bearer: token },
          on: 'outlets/{outlet}/on',
          off: 'outlets/{outlet}/off',
          cycle: 'outlets/{outlet}/cycle',
          state: 'outlets/{outlet}',
        },
      },
      hosts,
    });
    const all = [1, 2, 3, 4].flatMap((n) => [lab.remote(`dut${n}`).power('cycle'), lab.remote(`dut${n}`).power('state')]);
    expect(await Promise.all(all)).toEqual(['on', 'on', 'on', 'on', 'on', 'on', 'on', 'on']);
    expect(pdu.requests).toHaveLength(8);
    expect(pdu.maxInFlight).toBe(1);
  } finally {
    await pdu.close();
  }
});
