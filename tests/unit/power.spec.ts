/**
 * The power layer with in-process doubles: templates, answers told as states, one PDU's
 * actions serialised (in a process and across PDU objects, as across workers) and bounded,
 * and the QEMU driver's QMP dialogue against a QMP double. The real QEMU is exercised in the
 * qemu project; the drivers' end-to-end tests are in local/ and containers/.
 */
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { commandPowerSchema, qemuPowerSchema } from '../../src/config/schema.js';
import { Pdu } from '../../src/power/pdu.js';
import { QemuDriver } from '../../src/power/qemuDriver.js';
import { stateFromText } from '../../src/power/templateDriver.js';
import { fillTemplate } from '../../src/power/templates.js';
import type { OutletRef, PowerDriver } from '../../src/power/types.js';
import { PowerError } from '../../src/util/errors.js';
import { shellQuote } from '../../src/util/shellQuote.js';

test('templates: outlet and host filled in, escaped for where they go; other braces untouched', () => {
  const ref = { host: 'dut1', outlet: "A 1'x" };
  expect(fillTemplate('pdu-cli --outlet {outlet} --label {host} on', ref, shellQuote)).toBe(`pdu-cli --outlet 'A 1'\\''x' --label 'dut1' on`);
  expect(fillTemplate('http://pdu/outlets/{outlet}', ref, encodeURIComponent)).toBe("http://pdu/outlets/A%201'x");
  expect(fillTemplate(`docker inspect -f '{{.State.Running}}' {outlet}`, { host: 'h', outlet: 'c1' }, shellQuote)).toBe(
    `docker inspect -f '{{.State.Running}}' 'c1'`,
  );
  expect(() => fillTemplate('relay {outlet} on', { host: 'dut1', outlet: undefined })).toThrow(/needs \{outlet\}, and host "dut1" has no outlet/);
});

test('answers are told as on, off or unknown by the patterns', () => {
  const patterns = { stateOn: /\bon\b/i, stateOff: /\boff\b/i };
  expect(stateFromText('Outlet 3: ON', patterns)).toBe('on');
  expect(stateFromText('{"state":"off"}', patterns)).toBe('off');
  expect(stateFromText('error', patterns)).toBe('unknown');
  expect(stateFromText('on and off', patterns)).toBe('unknown');
  expect(stateFromText('true', { stateOn: /^true/, stateOff: /^false/ })).toBe('on');
});

/** A driver double that records overlapping actions; `hold` keeps an action running until released. */
class RecordingDriver implements PowerDriver {
  readonly kind = 'command' as const;
  inFlight = 0;
  maxInFlight = 0;
  readonly started: string[] = [];
  constructor(
    private readonly shared: { inFlight: number; max: number } = { inFlight: 0, max: 0 },
    private readonly workMs = 20,
    private readonly ignoreSignal = false,
  ) {}
  get maxShared(): number {
    return this.shared.max;
  }
  private async work(what: string, ref: OutletRef, signal: AbortSignal): Promise<void> {
    this.started.push(`${what} ${ref.host}`);
    this.shared.inFlight++;
    this.shared.max = Math.max(this.shared.max, this.shared.inFlight);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.workMs);
        if (!this.ignoreSignal) signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
      });
    } finally {
      this.shared.inFlight--;
    }
  }
  on = (ref: OutletRef, signal: AbortSignal) => this.work('on', ref, signal);
  off = (ref: OutletRef, signal: AbortSignal) => this.work('off', ref, signal);
}

const commandConfig = (timeout: number) => commandPowerSchema.parse({ driver: 'command', on: 'x', off: 'y', timeout, cycleDelay: 5 });
const uniqueName = (base: string) => `${base}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

test('one PDU: actions of several hosts run one at a time, in the order asked', async () => {
  const driver = new RecordingDriver();
  const pdu = new Pdu({ name: uniqueName('rack'), own: false, config: commandConfig(10_000), driver });
  await Promise.all([
    pdu.act('cycle', { host: 'dut1', outlet: '1' }),
    pdu.act('on', { host: 'dut2', outlet: '2' }),
    pdu.act('off', { host: 'dut3', outlet: '3' }),
  ]);
  expect(driver.maxShared).toBe(1);
  // A cycle without a cycle command of its own is off, cycleDelay, on, all while holding the PDU.
  expect(driver.started).toEqual(['off dut1', 'on dut1', 'on dut2', 'off dut3']);
  expect(await pdu.act('state', { host: 'dut1', outlet: '1' })).toBe('unknown');
});

test('one PDU known to two labs (as two workers would): still one action at a time', async () => {
  const shared = { inFlight: 0, max: 0 };
  const name = uniqueName('shared');
  const a = new Pdu({ name, own: false, config: commandConfig(10_000), driver: new RecordingDriver(shared, 30) });
  const b = new Pdu({ name, own: false, config: commandConfig(10_000), driver: new RecordingDriver(shared, 30) });
  await Promise.all([1, 2, 3].flatMap((i) => [a.act('on', { host: `a${i}`, outlet: '1' }), b.act('off', { host: `b${i}`, outlet: '2' })]));
  expect(shared.max).toBe(1);
});

test('a driver that overstays the bound fails within it, naming host, driver and outlet; who waited behind it is told who held the PDU', async () => {
  const pdu = new Pdu({ name: uniqueName('slow'), own: false, config: commandConfig(300), driver: new RecordingDriver(undefined, 1_000, true) });
  const [first, second] = await Promise.allSettled([pdu.act('on', { host: 'dut1', outlet: '7' }), pdu.act('off', { host: 'dut2', outlet: '8' })]);
  expect(first.status).toBe('rejected');
  const firstError = (first as PromiseRejectedResult).reason as PowerError;
  expect(firstError).toBeInstanceOf(PowerError);
  expect(firstError.message).toMatch(/^dut1 \(power\): on of outlet 7 of PDU "slow-.*" \(command\) did not finish: the PDU's 300 ms timeout was exceeded\./);
  expect(firstError.target).toMatchObject({ driver: 'command', outlet: '7' });
  const secondError = (second as PromiseRejectedResult).reason as PowerError;
  expect(secondError.message).toMatch(
    /^dut2 \(power\): off of outlet 8 of PDU "slow-.*" \(command\) did not start: the PDU's 300 ms timeout was exceeded; it was busy with on for dut1 for \d+ ms\./,
  );
});

test('a caller giving up is told so, and its action never runs later', async () => {
  const driver = new RecordingDriver(undefined, 200);
  const pdu = new Pdu({ name: uniqueName('abandon'), own: false, config: commandConfig(10_000), driver });
  const controller = new AbortController();
  const first = pdu.act('on', { host: 'dut1', outlet: '1' });
  const second = pdu.act('off', { host: 'dut2', outlet: '2' }, controller.signal);
  controller.abort(new Error('the test ended'));
  await expect(second).rejects.toThrow(/did not start: the test ended/);
  await first;
  await pdu.act('on', { host: 'dut3', outlet: '3' });
  expect(driver.started).toEqual(['on dut1', 'on dut3']);
});

/** A QMP double on a unix socket: greeting, capabilities, run states; resets take effect a moment later, as in QEMU. */
function qmpDouble(initial: string, options: { greet?: boolean } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-qmp-'));
  const socket = path.join(dir, 'qmp.sock');
  const state = { status: initial, commands: [] as string[] };
  const connections = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    connections.add(conn);
    conn.on('close', () => connections.delete(conn));
    if (options.greet === false) return void conn.resume();
    conn.write(`${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: ['oob'] } })}\n`);
    let buffer = '';
    conn.on('data', (chunk) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        const { execute, id } = JSON.parse(buffer.slice(0, nl)) as { execute: string; id: string };
        buffer = buffer.slice(nl + 1);
        state.commands.push(execute);
        const reply = (body: object) => conn.write(`${JSON.stringify({ ...body, id })}\n`);
        switch (execute) {
          case 'query-status':
            reply({ return: { status: state.status, running: state.status === 'running' } });
            break;
          case 'stop':
            state.status = 'paused';
            reply({ return: {} });
            break;
          case 'cont':
            if (state.status === 'shutdown') reply({ error: { class: 'GenericError', desc: 'Resetting the Virtual Machine is required' } });
            else {
              state.status = 'running';
              reply({ return: {} });
            }
            break;
          case 'system_reset':
            reply({ return: {} });
            setTimeout(() => {
              if (state.status !== 'running') state.status = 'prelaunch';
              conn.write(`${JSON.stringify({ event: 'RESET', data: { guest: false, reason: 'host-qmp-system-reset' } })}\n`);
            }, 30);
            break;
          default:
            reply({ return: {} });
        }
      }
    });
  });
  return {
    socket,
    state,
    listen: () => new Promise<void>((resolve) => server.listen(socket, resolve)),
    /** Whether a client is still connected (the driver must close its connection after each action). */
    get clients() {
      return connections.size;
    },
    close: () => {
      for (const conn of connections) conn.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function qemuPdu(socket: string) {
  const config = qemuPowerSchema.parse({ driver: 'qemu', socket, timeout: 2_000 });
  return new Pdu({ name: 'vm', own: true, config, driver: new QemuDriver(config) });
}
const vm = { host: 'vm', outlet: undefined };

test('qemu driver: state from the run state; on = reset then run, once the reset took effect; off = stop; cycle = reset', async () => {
  const qmp = qmpDouble('shutdown');
  await qmp.listen();
  try {
    const pdu = qemuPdu(qmp.socket);
    expect(await pdu.act('state', vm)).toBe('off');
    await pdu.act('on', vm);
    expect(qmp.state.status).toBe('running');
    expect(qmp.state.commands).toEqual(['qmp_capabilities', 'query-status', 'qmp_capabilities', 'query-status', 'system_reset', 'cont']);
    expect(await pdu.act('state', vm)).toBe('on');
    qmp.state.commands.length = 0;
    await pdu.act('on', vm); // already on: nothing to do
    await pdu.act('off', vm);
    expect(qmp.state.status).toBe('paused');
    await pdu.act('cycle', vm);
    expect(qmp.state.status).toBe('running');
    expect(qmp.state.commands.filter((c) => c !== 'qmp_capabilities')).toEqual([
      'query-status',
      'query-status',
      'stop',
      'system_reset',
      'query-status',
      'cont',
    ]);
    qmp.state.status = 'guest-panicked';
    expect(await pdu.act('state', vm)).toBe('on');
  } finally {
    await qmp.close();
  }
});

test('qemu driver: no QEMU on the socket is off, and on says QEMU is not running', async () => {
  const pdu = qemuPdu(path.join(mkdtempSync(path.join(os.tmpdir(), 'lw-qmp-')), 'absent.sock'));
  expect(await pdu.act('state', vm)).toBe('off');
  await expect(pdu.act('on', vm)).rejects.toThrow(
    /^vm \(power\): on of vm's own qemu driver failed: QEMU is not running: nothing answers on its QMP socket .*absent\.sock\. The qemu driver switches a running QEMU on and off but cannot start one/,
  );
});

test('qemu driver: a monitor held by another client is reported as such, within the bound', async () => {
  const qmp = qmpDouble('running', { greet: false });
  await qmp.listen();
  try {
    await expect(qemuPdu(qmp.socket).act('cycle', vm)).rejects.toThrow(
      /cycle of vm's own qemu driver failed: the QMP monitor at .* accepted the connection but did not answer within 1\.00 s.*QEMU serves one client per QMP socket/,
    );
    await expect.poll(() => qmp.clients).toBe(0);
  } finally {
    await qmp.close();
  }
});
