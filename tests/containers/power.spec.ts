/**
 * Power control on container boards: the command driver power-cycling a container
 * (`docker restart`, `docker stop`/`start`), reboots (soft and hard) through a bastion,
 * commands, a session and an SFTP upload cut by a power cycle, the HTTP driver switching a
 * container through a REST PDU, and recovery between tests in real Playwright runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { defineLab, type LabInput } from '../../src/config/defineLab.js';
import type { HostInput, PduInput } from '../../src/config/schema.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import { HostUnavailableError, TransferError } from '../../src/util/errors.js';
import { expect, labInput, privateLab, type StartedLab, test } from '../helpers/containerLab.js';
import { inlineAttachment, resultOf, runInlineTest } from '../helpers/inlineTest.js';
import { startPduServer } from '../helpers/pduServer.js';

// One private lab for the file: its boards are restarted, stopped and paused. The tests run
// in order in one worker.
test.describe.configure({ mode: 'default' });
let started: StartedLab;
test.beforeAll(async () => {
  // Fixed published ports: a restarted container keeps them, as a rebooted board keeps its address.
  started = await privateLab({
    roles: ['target', 'telnetOnly', 'bastion', 'inner'],
    roleOptions: { target: { fixedPorts: true }, telnetOnly: { fixedPorts: true } },
  });
  // A container that exits comes back, as a board does after its own reboot command.
  execFileSync('docker', ['update', '--restart=always', started.host('inner').name], { timeout: 30_000 });
});
test.afterAll(async () => {
  await started?.stop();
});

/** A PDU whose outlets are containers: cycle restarts one, off stops it, on starts it. */
const dockerPdu = (extra: Partial<PduInput> = {}): PduInput =>
  ({
    driver: 'command',
    on: 'docker start {outlet}',
    off: 'docker stop -t 0 {outlet}',
    cycle: 'docker restart -t 0 {outlet}',
    state: "docker inspect -f '{{.State.Running}}' {outlet}",
    stateOn: '^true',
    stateOff: '^false',
    timeout: 60_000,
    ...extra,
  }) as PduInput;

function labOf(hosts: Record<string, Partial<HostInput>>, pdus: Record<string, PduInput> = { docker: dockerPdu() }) {
  const input: LabInput = { ...labInput(started, hosts), pdus };
  const lab = new Lab(defineLab(input));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  return { lab, events };
}

const container = (role: 'target' | 'telnetOnly' | 'inner') => started.host(role).name;
/** When PID 1 started (clock ticks since the machine booted): a new value means a new boot of the board. */
const bootMark = async (host: { exec(c: string): Promise<{ output: string }> }) => (await host.exec("cut -d' ' -f22 /proc/1/stat")).output.trim();
const powerLines = (events: LabEvent[], host: string) =>
  events.flatMap((e) => (e.type === 'power' && e.host === host ? [`${e.text}${e.error ? ` FAILED — ${e.error}` : ''}`] : []));
const connects = (events: LabEvent[], host: string) => events.filter((e) => e.type === 'connection' && e.host === host && e.event === 'connected').length;

test('command driver: docker restart power-cycles the board, and it is back with fresh shells; docker stop/start switch it off and on', async () => {
  const { lab, events } = labOf({ target: { power: { pdu: 'docker', outlet: container('target') } } });
  const dut = lab.remote('target');
  const before = await bootMark(dut);
  await dut.run('cd /tmp && export MARK=set');
  const side = await dut.openSession('side');
  await side.run('cd /var');

  const result = await dut.reboot({ hard: true });
  expect(result).toMatchObject({ hard: true, bootMs: expect.any(Number), reconnectMs: expect.any(Number) });
  expect(await bootMark(dut)).not.toBe(before);
  // The default shell and the named session are new shells: their state is gone, the sessions work.
  expect((await dut.run('pwd; echo ${MARK:-unset}')).only.output).toBe('/home/lab\nunset\n');
  expect((await side.run('pwd')).only.output).toBe('/home/lab\n');
  const lines = powerLines(events, 'target');
  expect(lines).toContainEqual('target goes down: power-cycled by host.reboot({ hard: true })');
  expect(lines).toContainEqual(
    'closed for the outage: the SSH connection, the shells of "default", "side" (each session opens a new shell on its next command)',
  );
  expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^cycle: outlet ${container('target')} of PDU "docker" \\(command\\) · `)));
  expect(lines).toContainEqual(expect.stringMatching(/^target is up after .* \(ssh at .*, shell at .*\)$/));

  expect(await dut.power('state')).toBe('on');
  expect(await dut.power('off')).toBe('off');
  expect(await dut.power('state')).toBe('off');
  const refused = await dut.exec('true').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(refused).toBeInstanceOf(HostUnavailableError);
  expect((refused as Error).message).toMatch(/^target: target is powered off \(powered off by host\.power\("off"\), .* ago\)\./);
  await dut.power('on');
  await dut.waitUntilUp({ timeout: 60_000 });
  expect((await dut.exec('echo back')).output).toBe('back\n');
  await lab.close();
});

test('a telnet-only board: power-cycled, back when its telnet login answers; its shell and exec pool are new', async () => {
  const { lab, events } = labOf({ telnet: { power: { pdu: 'docker', outlet: container('telnetOnly') } } });
  const board = lab.remote('telnet');
  const before = await bootMark(board);
  await board.run('cd /tmp');
  await board.reboot({ hard: true });
  expect(await bootMark(board)).not.toBe(before);
  expect((await board.run('pwd')).only.output).toBe('/home/lab\n');
  expect((await board.exec('echo pooled')).output).toBe('pooled\n');
  expect(powerLines(events, 'telnet')).toContainEqual(expect.stringMatching(/^telnet is up after .* \(telnet at .*\)$/));
  await lab.close();
});

test('reboot and wait through a bastion: soft (the reboot command, its disconnect expected) and hard (a PDU that returns before the board boots)', async () => {
  const { lab, events } = labOf(
    {
      inner: {
        power: { pdu: 'slow', outlet: container('inner') },
        // The lab user's sudo always asks for the password; PID 1 ending makes Docker restart the container.
        lifecycle: { rebootCommand: "echo 'lab-password' | sudo -S -p '' kill -TERM 1", upTimeout: 90_000, pollInterval: 500 },
      },
    },
    // The board comes up two seconds after the PDU answered, as real boards boot after a cycle.
    { slow: dockerPdu({ cycle: 'docker stop -t 0 {outlet} && { sleep 2; docker start {outlet}; } >/dev/null 2>&1 &' }) },
  );
  const inner = lab.remote('inner');
  const first = await bootMark(inner);
  const soft = await inner.reboot();
  expect(soft.hard).toBe(false);
  const second = await bootMark(inner);
  expect(second).not.toBe(first);
  const hard = await inner.reboot({ hard: true });
  expect(hard.hard).toBe(true);
  expect(await bootMark(inner)).not.toBe(second);
  expect((await inner.run('hostname')).only.output).toBe('inner\n');

  const lines = powerLines(events, 'inner');
  expect(lines).toContainEqual(`inner goes down: typing "echo 'lab-password' | sudo -S -p '' kill -TERM 1" into a new shell`.replace('lab-password', '******'));
  expect(lines).toContainEqual(expect.stringMatching(/^inner went down after .* \(.*\)$/));
  expect(lines).toContainEqual(expect.stringMatching(/^waiting for inner: ssh [a-z ]+.*, \d+ s$/));
  // The bastion's connection carried all of it: only the target reconnected.
  expect(connects(events, 'bastion')).toBe(1);
  expect(connects(events, 'inner')).toBe(3);
  await lab.close();
});

test('commands, a named session and an SFTP upload cut by a power cycle settle with clear errors; calls meanwhile fail at once; all work again after', async () => {
  const { lab, events } = labOf({ target: { power: { pdu: 'docker', outlet: container('target') }, commandTimeout: 60_000 } });
  const dut = lab.remote('target');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-power-cut-'));
  const file = path.join(dir, 'big.bin');
  writeFileSync(file, Buffer.alloc(256 * 1024 * 1024, 7));
  const side = await dut.openSession('side');
  // Each command says when it runs on the device.
  const running = (session: string) => events.some((e) => e.type === 'command-output' && e.session === session && e.line === 'running');

  const exec = dut.exec('echo running; sleep 60');
  const run = dut.run('echo running; sleep 60');
  const sideRun = side.run('echo running; sleep 60');
  let moving!: () => void;
  const transferring = new Promise<void>((resolve) => (moving = resolve));
  const upload = dut.put(file, '/tmp/big.bin', { onProgress: (done) => done > 0 && moving() }).then(
    () => undefined,
    (e: unknown) => e,
  );
  await transferring;
  await expect.poll(() => ['exec', 'default', 'side'].every(running), { timeout: 30_000 }).toBe(true);

  const rebooting = dut.reboot({ hard: true });
  // A call made now fails at once.
  const meanwhile = await dut.exec('true').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(meanwhile).toBeInstanceOf(HostUnavailableError);
  expect((meanwhile as Error).message).toMatch(
    /^target: target is rebooting \(power-cycled by host\.reboot\(\{ hard: true \}\), \d+ ms ago\)\. Calls made during a reboot fail at once/,
  );

  const cut = /^aborted \(target was power-cycled while this ran \(power-cycled by host\.reboot\(\{ hard: true \}\)\)\); /;
  const execResult = await exec;
  expect(execResult.status).toBe('error');
  expect(execResult.error).toMatch(cut);
  const runResult = (await run).only;
  expect(runResult.status).toBe('error');
  expect(runResult.error).toMatch(cut);
  expect((await sideRun).only.error).toMatch(cut);
  const uploadError = await upload;
  expect(uploadError).toBeInstanceOf(TransferError);
  expect((uploadError as Error).message).toMatch(
    /^target \(sftp\): put of .*big\.bin to \/tmp\/big\.bin failed after \d+ of \d+ bytes: it was aborted \(target was power-cycled while this ran/,
  );
  await rebooting;

  expect((await dut.exec('echo exec')).output).toBe('exec\n');
  expect((await dut.run('echo run')).only.output).toBe('run\n');
  expect((await side.run('echo side')).only.output).toBe('side\n');
  const small = path.join(dir, 'small.txt');
  writeFileSync(small, 'after the cycle\n');
  expect((await dut.put(small, '/tmp/small.txt')).bytes).toBe(16);
  await lab.close();
});

test('HTTP driver: a REST PDU power-cycles a container board, and its token is masked in the transcript', async () => {
  const token = 'container-pdu-token-9931';
  const pdu = await startPduServer({
    token,
    outlets: { [container('target')]: 'on' },
    onSwitch: async (outlet, action) =>
      void execFileSync('docker', [action === 'cycle' ? 'restart' : action === 'on' ? 'start' : 'stop', ...(action === 'on' ? [] : ['-t', '0']), outlet], {
        timeout: 60_000,
      }),
  });
  try {
    const { lab, events } = labOf(
      { target: { power: { pdu: 'rest', outlet: container('target') } } },
      {
        rest: {
          driver: 'http',
          baseUrl: pdu.url,
          headers: { Authorization: `Bearer ${token}` },
          on: 'outlets/{outlet}/on',
          off: 'outlets/{outlet}/off',
          cycle: 'outlets/{outlet}/cycle',
          state: 'outlets/{outlet}',
          timeout: 60_000,
        },
      },
    );
    const dut = lab.remote('target');
    const before = await bootMark(dut);
    await dut.reboot({ hard: true });
    expect(await bootMark(dut)).not.toBe(before);
    expect(pdu.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /api/outlets/${container('target')}/cycle`]);
    expect(JSON.stringify(events)).not.toContain(token);
    await lab.close();
  } finally {
    await pdu.close();
  }
});

/** An inline Playwright project whose lab is this file's container lab, with `target` on the docker PDU. */
function recoveryLab(pdu: PduInput, lifecycle: HostInput['lifecycle']): string {
  const input: LabInput = { ...labInput(started, { target: { power: { pdu: 'docker', outlet: container('target') }, lifecycle } }), pdus: { docker: pdu } };
  return `import { defineLab } from 'labwright';\nexport default defineLab(${JSON.stringify(input, null, 2)});\n`;
}

const hangThenUse = (name: string) => `
  import { execFileSync } from 'node:child_process';
  import { test, expect } from 'labwright';
  test('leaves the board hung', async ({ remote }) => {
    const dut = await remote('target');
    expect((await dut.run('echo alive')).only.output).toBe('alive\\n');
    execFileSync('docker', ['pause', '${name}']);
    expect('the board').toBe('answering');
  });
  test('uses the board next', async ({ remote }) => {
    const dut = await remote('target');
    expect((await dut.run('echo recovered')).only.output).toBe('recovered\\n');
  });
`;

test('recovery: a failed test left the board hung; it does not pass its health check and is power-cycled before the next test, which passes', async () => {
  const run = await runInlineTest(
    {
      'lab.config.ts': recoveryLab(dockerPdu(), { recover: 'power-cycle', healthTimeout: 3_000, upTimeout: 60_000 }),
      'board.spec.ts': hangThenUse(container('target')),
    },
    { timeoutMs: 240_000 },
  );
  const failed = resultOf(run.report!, 'leaves the board hung');
  expect(failed.status, run.output).toBe('failed');
  const transcript = inlineAttachment(failed, 'transcript: target');
  expect(transcript).toMatch(/\[power\] · target did not pass its health check after test "leaves the board hung" failed: "true": no answer within 3\.00 s\n/);
  expect(transcript).toMatch(/\[power\] · recovering target by power-cycle\n/);
  expect(transcript).toMatch(/\[power\] · cycle: outlet .* of PDU "docker" \(command\)/);
  expect(transcript).toMatch(/\[power\] · target recovered by power-cycle in /);
  expect(resultOf(run.report!, 'uses the board next').status, run.output).toBe('passed');
});

test('recovery that fails: the next test that needs the board fails at once with the reason, and the run never hangs', async () => {
  try {
    const run = await runInlineTest(
      {
        // The PDU switches the board off and never on again: it cannot come back.
        'lab.config.ts': recoveryLab(dockerPdu({ cycle: 'docker stop -t 0 {outlet}' }), {
          recover: 'power-cycle',
          healthTimeout: 3_000,
          upTimeout: 4_000,
          pollInterval: 500,
        }),
        'board.spec.ts': hangThenUse(container('target')),
      },
      { timeoutMs: 240_000 },
    );
    const failed = resultOf(run.report!, 'leaves the board hung');
    expect(failed.status, run.output).toBe('failed');
    expect(inlineAttachment(failed, 'transcript: target')).toMatch(
      /\[power\] · target could not be recovered by power-cycle FAILED — .*did not come back within 4\.00 s/,
    );
    const next = resultOf(run.report!, 'uses the board next');
    expect(next.status).toBe('failed');
    expect(next.error?.message).toMatch(
      /target: target did not come back: it could not be recovered after test "leaves the board hung" failed earlier in this run \(.*did not come back within 4\.00 s/,
    );
  } finally {
    execFileSync('docker', ['start', container('target')], { timeout: 60_000 });
  }
});
