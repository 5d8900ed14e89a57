/**
 * Prompt mode and the boot-loader stage on a real U-Boot (QEMU's qemu-x86 ROM) booting a
 * real Debian kernel: autoboot interrupted, commands with U-Boot's `$?`, a hung command
 * interrupted with Ctrl+C, then Linux booted from U-Boot, logged in on the console, and
 * SSH on the same board once its network is up. In order, on one board per worker.
 */
import { TranscriptRecorder } from '../../src/playwright/transcript.js';
import { LabwrightError } from '../../src/util/errors.js';
import { expect, startBoardLab, test } from '../helpers/qemuLab.js';

test.describe.configure({ mode: 'default' });

test('autoboot is interrupted and U-Boot answers at its prompt', async ({ uboot }) => {
  const bootloader = await uboot.host.console.interruptAutoboot({ timeout: 60_000 });
  const r = await bootloader.run('version');
  expect(r).toSucceed();
  expect(r.only.output).toMatch(/^U-Boot 2023\.01/);
  // The echo of the typed line and the status marker are not output.
  expect(r.only.output).not.toContain('version;');
  expect(r.only.output).not.toContain('LWS_');
  expect(r.only.protocol).toBe('console');
});

test('printenv lists the environment with exit status 0', async ({ uboot }) => {
  const r = await uboot.host.console.bootloader.run('printenv');
  expect(r).toHaveExitCode(0);
  expect(r.only.output).toMatch(/^bootcmd=/m);
  expect(r.only.output).toMatch(/^Environment size: \d+\/\d+ bytes$/m);
});

test('a failing U-Boot command reports its status', async ({ uboot }) => {
  const r = await uboot.host.console.bootloader.run(['printenv no_such_variable', 'echo after']);
  expect(r.results[0]).toHaveExitCode(1);
  expect(r.results[0]!.status).toBe('failed');
  expect(r.results[0]!.output).toContain('"no_such_variable" not defined');
  expect(r.results[1]).toHaveOutput('after');
});

test('a command that never returns times out and Ctrl+C brings the prompt back', async ({ uboot }) => {
  const bootloader = uboot.host.console.bootloader;
  const hung = (await bootloader.run('echo before-sleep; sleep 3600', { timeout: 1_500 })).only;
  expect(hung.timedOut).toBe(true);
  expect(hung.exitCode).toBeNull();
  expect(hung.status).toBe('error');
  expect(hung.output).toContain('before-sleep');
  expect(hung.error).toMatch(/interrupted .* the prompt came back/);
  const after = await bootloader.run('echo still here');
  expect(after).toSucceed();
  expect(after.only.output).toBe('still here\n');
});

test('a console without exit status says so instead of inventing one', async ({ uboot }) => {
  const plain = uboot.host.console.promptMode('no-status', { status: false });
  const r = (await plain.run('echo hello')).only;
  expect(r.output).toBe('hello\n');
  expect(r.exitCode).toBeNull();
  expect(r.status).toBe('unknown');
  expect(r.ok).toBe(false);
  expect(r.error).toMatch(/no exit status/);
});

test('after a hard reset U-Boot boots Linux, the console logs in, and SSH answers on the same board', async ({ uboot }) => {
  const recorder = new TranscriptRecorder();
  const stop = uboot.lab.events.on((event) => recorder.record(event));
  const { host } = uboot;
  try {
    host.console.skipOutput();
    await uboot.board.reset();
    const report = await host.console.boot({
      commands: ['setenv bootargs console=ttyS0 loglevel=6', 'qfw load 02000000 10000000'],
      bootCommand: 'zboot 02000000 0 10000000 ${filesize}',
      ssh: { timeout: 60_000 },
    });
    expect(Object.keys(report.stages)).toEqual(['autoboot', 'commands', 'boot', 'login', 'ssh']);
    expect(report.commands.map((result) => result.status)).toEqual(['success', 'success']);
    expect(report.commands[1]!.output).toMatch(/loading kernel to address 02000000/);

    const onConsole = await host.console.run(['cd /tmp', 'pwd', 'uname -r', 'sh -c "exit 7"']);
    expect(onConsole.results[1]).toHaveOutput('/tmp');
    expect(onConsole.results[2]!.output).toMatch(/^6\.1\.\d+.*-cloud-amd64\n$/);
    expect(onConsole.results[3]).toHaveExitCode(7);
    expect(onConsole.results[3]!.protocol).toBe('console');

    const overSsh = await host.run('cat /proc/sys/kernel/hostname');
    expect(overSsh).toSucceed();
    expect(overSsh.only.protocol).toBe('ssh');
    expect(overSsh.only.output).toBe('labwright-board\n');
  } finally {
    stop();
  }
  // The console log of the test: firmware, boot loader and kernel, one timestamp per line.
  host.console.flushLog();
  const log = recorder.renderConsole('uboot');
  expect(log).toMatch(/^\d\d:\d\d:\d\d\.\d{3} U-Boot 2023\.01/m);
  expect(log).toMatch(/^\d\d:\d\d:\d\d\.\d{3} Hit any key to stop autoboot/m);
  expect(log).toMatch(/^\d\d:\d\d:\d\d\.\d{3} Starting kernel \.\.\./m);
  expect(log).toMatch(/^\d\d:\d\d:\d\d\.\d{3} \[ *\d+\.\d+\] Linux version 6\.1/m);
  expect(log).toMatch(/^\d\d:\d\d:\d\d\.\d{3} labwright-board login: root$/m);
  for (const line of log.trimEnd().split('\n')) expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} /);
  expect(log).not.toContain('lw-root-secret');
});

test('a board with its kernel withheld fails the boot stage within its bound, naming the stage', async () => {
  const dead = await startBoardLab({ name: 'nokernel', hostName: 'nokernel', firmware: 'u-boot', kernel: false, bootDisk: false });
  try {
    const error = await dead.host.console
      .boot({ commands: ['qfw load 02000000 10000000'], bootCommand: 'zboot 02000000', bootTimeout: 5_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LabwrightError);
    // U-Boot finds no kernel in the firmware config: the first boot-loader command fails.
    expect((error as Error).message).toMatch(
      /^nokernel \(console\): the boot stage "commands" failed after .*: nokernel \(console\): boot-loader command "qfw load 02000000 10000000" exited with 1/,
    );
  } finally {
    await dead.close();
  }
});
