/**
 * Power control of real QEMU boards through the QEMU driver (QMP on the board's unix
 * socket), with SSH and the serial console: a hard reset in the middle of commands, of a
 * console command and of an SFTP upload; a soft reboot (SSH and console both back); power
 * off and on; a board that never comes back (its kernel withheld); recovery after a test
 * left the board hung (a `sleep` on the console; a crashed kernel), in a real Playwright run.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { BOARD_PASSWORD, type PoweredBoard, poweredBoardHost, QemuBoard, startPoweredBoard } from '../../fixtures/qemu/poweredBoard.js';
import { defineLab } from '../../src/config/defineLab.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import { HostUnavailableError, TransferError } from '../../src/util/errors.js';
import { expect, inlineAttachment, resultOf, test } from '../helpers/inlineTest.js';

test.describe.configure({ mode: 'default' });

/** When PID 1 started, in clock ticks since boot, and the uptime: a new boot has a small uptime. */
const uptime = async (board: PoweredBoard) => Number((await board.host.exec('cut -d" " -f1 /proc/uptime')).output);
const powerLines = (events: LabEvent[]) => events.flatMap((e) => (e.type === 'power' ? [`${e.text}${e.error ? ` FAILED — ${e.error}` : ''}`] : []));
/** QEMU's own run state, asked directly (not through labwright's driver). */
const runState = (board: PoweredBoard) => board.board.withQmp((qmp) => qmp.execute<{ status: string }>('query-status')).then((r) => r.status);

test.describe('a Linux board with SSH', () => {
  let board: PoweredBoard;
  test.beforeAll(async () => {
    test.setTimeout(240_000);
    board = await startPoweredBoard({ name: 'power' });
  });
  test.afterAll(async () => {
    await board?.close();
  });

  test('a hard reset in the middle of commands, of a console command and of an SFTP upload: each settles with a clear error; everything works after', async () => {
    const { host, events } = board;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-qemu-power-'));
    const file = path.join(dir, 'big.bin');
    writeFileSync(file, Buffer.alloc(128 * 1024 * 1024, 5));
    const running = (session: string) => events.some((e) => e.type === 'command-output' && e.session === session && e.line === 'running');
    // Long timeouts: under load the console's login alone can take a while, and these must still run when the reset comes.
    // The board's Dropbear (2022.83) takes exec channels one at a time (dropbear#321): the
    // exec and the upload run side by side on connections of their own.
    const exec = host.exec('echo running; sleep 300', { timeout: 240_000 });
    const run = host.run('echo running; sleep 300', { timeout: 240_000 });
    const onConsole = host.console.run('echo running; sleep 300', { timeout: 240_000 });
    let moving!: () => void;
    const transferring = new Promise<void>((resolve) => (moving = resolve));
    const upload = host.put(file, '/tmp/big.bin', { onProgress: (done) => done > 0 && moving() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await transferring;
    await expect.poll(() => running('exec') && running('default') && running('console'), { timeout: 60_000 }).toBe(true);
    const consoleFrom = events.length;
    const before = await runState(board);

    const result = await host.reboot({ hard: true });

    expect(before).toBe('running');
    const cut = /^aborted \(board was power-cycled while this ran \(power-cycled by host\.reboot\(\{ hard: true \}\)\)\)/;
    expect((await exec).error).toMatch(cut);
    expect((await run).only.error).toMatch(cut);
    expect((await onConsole).only.error).toMatch(cut);
    const uploadError = await upload;
    expect(uploadError).toBeInstanceOf(TransferError);
    expect((uploadError as Error).message).toMatch(
      /^board \(sftp\): put of .*big\.bin to \/tmp\/big\.bin failed after \d+ of \d+ bytes: it was aborted \(board was power-cycled while this ran/,
    );
    expect(result).toMatchObject({ hard: true, bootMs: expect.any(Number) });
    expect(await uptime(board)).toBeLessThan(result.totalMs / 1000 + 5);
    expect(powerLines(events)).toContainEqual(expect.stringMatching(/^cycle: board's own qemu driver · /));
    expect(powerLines(events)).toContainEqual(expect.stringMatching(/^board is up after .* \(console at .*, ssh at .*, shell at .*\)$/));
    // The console log has the board's new boot, up to its login prompt.
    const consoleLog = events
      .slice(consoleFrom)
      .flatMap((e) => (e.type === 'console' ? [e.line] : []))
      .join('\n');
    expect(consoleLog).toMatch(/labwright board up[\s\S]*login: /);
    expect((await host.run('echo run')).only.output).toBe('run\n');
    expect((await host.console.run('echo console')).only.output).toBe('console\n');
    const small = path.join(dir, 'small.txt');
    writeFileSync(small, 'after the reset\n');
    expect((await host.put(small, '/tmp/small.txt', { verify: 'sha256' })).verified).toBe('sha256');
  });

  test('a soft reboot: `reboot` typed into a shell, the disconnect expected, the board back with a new boot, SSH and console both', async () => {
    const { host, events } = board;
    await host.run('echo before > /tmp/state');
    const result = await host.reboot();
    expect(result.hard).toBe(false);
    expect(await uptime(board)).toBeLessThan(result.totalMs / 1000 + 5);
    // The initramfs is new: what the last boot wrote is gone.
    expect((await host.run('cat /tmp/state 2>/dev/null || echo gone')).only.output).toBe('gone\n');
    const lines = powerLines(events);
    expect(lines).toContainEqual('board goes down: typing "reboot" into a new shell');
    expect(lines).toContainEqual(expect.stringMatching(/^board went down after .*$/));
    // SSH and the console are both back.
    expect(lines).toContainEqual(expect.stringMatching(/^board is up after .* \(console at .*, ssh at .*, shell at .*\)$/));
    expect((await host.console.run('cut -d" " -f1 /proc/uptime')).only.output).toMatch(/^\d+\.\d+\n$/);
  });

  test('power off: QEMU stops, calls fail clearly; power on: a cold boot, and the board answers again', async () => {
    const { host } = board;
    expect(await host.power('off')).toBe('off');
    expect(await runState(board)).toBe('paused');
    expect(await host.power('state')).toBe('off');
    const refused = await host.exec('true').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(HostUnavailableError);
    expect((refused as Error).message).toMatch(
      /^board: board is powered off \(powered off by host\.power\("off"\), .* ago\)\. Power it on with host\.power\("on"\), then wait with host\.waitUntilUp\(\)\.$/,
    );
    await host.power('on');
    expect(await runState(board)).toBe('running');
    await host.waitUntilUp();
    expect(await uptime(board)).toBeLessThan(60);
  });

  test('recovery: tests that left the board hung (a sleep on its console; a crashed kernel) and failed; labwright power-cycles it through QMP before each next test', async ({
    runInlineTest,
  }) => {
    test.setTimeout(400_000);
    // QEMU serves one client per console socket: the inline run's lab takes it over.
    await board.host.console.close();
    const input = { hosts: { board: poweredBoardHost(board.board, { lifecycle: { recover: 'power-cycle', healthTimeout: 5_000 } }) } };
    const run = await runInlineTest(
      {
        'lab.config.ts': `import { defineLab } from 'labwright';\nexport default defineLab(${JSON.stringify(input, null, 2)});\n`,
        'board.spec.ts': `
          import { test, expect } from 'labwright';
          test.describe.configure({ mode: 'default' });
          const uptime = async (dut) => (await dut.console.run('cut -d" " -f1 /proc/uptime')).only.output;
          test('leaves a sleep on the console', async ({ remote }) => {
            const dut = await remote('board');
            expect(await uptime(dut)).toMatch(/^\\d+\\.\\d+\\n$/);
            await dut.console.send('sleep 100000\\n');
            expect('the console').toBe('answering');
          });
          test('uses the console next', async ({ remote }) => {
            expect(await uptime(await remote('board'))).toMatch(/^\\d+\\.\\d+\\n$/);
          });
          test('crashes the kernel', async ({ remote }) => {
            const dut = await remote('board');
            await dut.send('echo c > /proc/sysrq-trigger\\n');
            expect('the board').toBe('answering');
          });
          test('uses the board next', async ({ remote }) => {
            const dut = await remote('board');
            expect((await dut.run('echo alive')).only.output).toBe('alive\\n');
          });
        `,
      },
      { timeoutMs: 360_000 },
    );
    const hung = resultOf(run.report!, 'leaves a sleep on the console');
    expect(hung.status, run.output).toBe('failed');
    const transcript = inlineAttachment(hung, 'transcript: board');
    expect(transcript).toMatch(/\[power\] · board did not pass its health check after test "leaves a sleep on the console" failed: "true" on the console: /);
    expect(transcript).toMatch(/\[power\] · cycle: board's own qemu driver · /);
    expect(transcript).toMatch(/\[power\] · board recovered by power-cycle in /);
    // The console log of the failed test covers the recovery: the new boot to its login prompt.
    expect(inlineAttachment(hung, 'console: board')).toMatch(/labwright board up[\s\S]*login: /);
    expect(resultOf(run.report!, 'uses the console next').status, run.output).toBe('passed');

    const crashed = resultOf(run.report!, 'crashes the kernel');
    expect(crashed.status, run.output).toBe('failed');
    expect(inlineAttachment(crashed, 'transcript: board')).toMatch(
      /\[power\] · board did not pass its health check after test "crashes the kernel" failed: "true": no answer within 5\.00 s\n/,
    );
    expect(inlineAttachment(crashed, 'transcript: board')).toMatch(/\[power\] · board recovered by power-cycle in /);
    expect(resultOf(run.report!, 'uses the board next').status, run.output).toBe('passed');
    await board.host.waitUntilUp();
  });
});

test('a console-only board: the reboot command typed on its console, a hard reset; back when the console logs in again', async () => {
  test.setTimeout(180_000);
  const board = await QemuBoard.create({ name: 'console', firmware: 'none', ssh: false });
  const lab = new Lab(
    defineLab({
      hosts: {
        board: {
          term: 'console',
          users: { root: { password: BOARD_PASSWORD } },
          console: { transport: 'tcp', address: '127.0.0.1', port: board.consolePort },
          power: { driver: 'qemu', socket: board.qmpSocket },
          commandTimeout: 30_000,
          lifecycle: { upTimeout: 120_000, pollInterval: 250 },
        },
      },
    }),
  );
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  try {
    const host = lab.remote('board');
    await host.console.connection.ensure();
    await host.power('on');
    await host.console.waitFor(/login: $/, { timeout: 120_000 });
    const uptime = async () => Number((await host.run('cut -d" " -f1 /proc/uptime')).only.output);
    await host.run('echo before > /tmp/state');
    const soft = await host.reboot();
    expect(soft.hard).toBe(false);
    expect((await host.run('cat /tmp/state 2>/dev/null || echo gone')).only.output).toBe('gone\n');
    const beforeReset = await uptime();
    const cut = host.run('echo running; sleep 300');
    await expect.poll(() => events.some((e) => e.type === 'command-output' && e.line === 'running'), { timeout: 60_000 }).toBe(true);
    const hard = await host.reboot({ hard: true });
    expect((await cut).only.error).toMatch(/^aborted \(board was power-cycled while this ran/);
    expect(await uptime()).toBeLessThan(beforeReset + hard.totalMs / 1000);
    const lines = powerLines(events);
    expect(lines).toContainEqual('board goes down: typing "reboot" into its console shell');
    expect(lines).toContainEqual(expect.stringMatching(/^board is up after .* \(console at .*, shell at .*\)$/));
    expect((await host.run('echo back')).only.output).toBe('back\n');
  } finally {
    await lab.close();
    await board.stop();
  }
});

test('a board that never comes back (its kernel withheld): waiting fails within its bound, saying what it last saw', async () => {
  test.setTimeout(180_000);
  // U-Boot finds no kernel to boot: the board never answers on SSH.
  const withheld = await startPoweredBoard({ name: 'nokernel', firmware: 'u-boot', kernel: false, on: false });
  try {
    const { host, events } = withheld;
    await host.power('on');
    const error = await host.waitUntilUp({ timeout: 15_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HostUnavailableError);
    expect((error as Error).message).toMatch(/^board: board did not come back within 15\.0 s: ssh:? [a-z ]+ \(\d+ attempts\)\. Check the device/);
    expect(host.state).toBe('down');
    await expect(host.exec('true')).rejects.toThrow(/^board: board did not come back: /);
    // A hard reboot of it ends the same way, within its own bound; now the console is watched too.
    await expect(host.reboot({ hard: true, timeout: 10_000 })).rejects.toThrow(
      /did not come back within 10\.0 s: console: no .* on the console \(tcp .*\) yet\. \(\d+ attempts\)/,
    );
    expect(powerLines(events)).toContainEqual(expect.stringMatching(/^waiting for board: ssh:? [a-z ]+, \d+ s$/));
  } finally {
    await withheld.close();
  }
});
