/**
 * A board's serial console, from power-on: U-Boot's autoboot interrupted, boot-loader
 * commands with their exit status, Linux booted from U-Boot and a login on the console,
 * then SSH on the same board; a hard reboot through its power switch (QEMU's monitor). The
 * shell examples then run over this console (project
 * `qemu-board`). The console log of each test is attached as `console: qemu-board`.
 */
import { expect, test } from 'labwright';

test.describe.configure({ mode: 'serial' });

test('U-Boot: stop the autoboot countdown and ask the boot loader', async ({ remote }) => {
  const board = await remote();
  const countdown = board.console.waitFor(/Hit any key to stop autoboot/, { timeout: 60_000, keep: true });
  await board.power('on');
  await countdown;
  const uboot = await board.console.interruptAutoboot();
  const version = await uboot.run('version');
  expect(version).toSucceed();
  expect(version.only.output).toMatch(/^U-Boot \d{4}\.\d\d/);
  const env = await uboot.run(['printenv bootcmd', 'printenv no_such_variable']);
  expect(env.results[0]).toHaveOutput(/^bootcmd=/);
  expect(env.results[1]).toHaveExitCode(1);
});

test('boot Linux from U-Boot, log in on the console, then SSH on the same board', async ({ remote }) => {
  const board = await remote();
  // From U-Boot's prompt: the kernel and initrd come from QEMU's firmware config (qfw).
  const report = await board.console.boot({
    interrupt: 'prompt',
    commands: ['setenv bootargs console=ttyS0 quiet', 'qfw load 02000000 10000000'],
    bootCommand: 'zboot 02000000 0 10000000 ${filesize}',
    ssh: { timeout: 60_000 },
  });
  expect(report.commands.every((result) => result.ok)).toBe(true);
  // The console's shell and SSH reach the same board.
  const onConsole = await board.console.run('cat /proc/sys/kernel/hostname');
  const overSsh = await board.exec('cat /proc/sys/kernel/hostname');
  expect(onConsole.only.output).toBe(overSsh.output);
});

test('a hard reboot: power-cycled, back when its console logs in again and SSH answers', async ({ remote }) => {
  const board = await remote();
  const reboot = await board.reboot({ hard: true, timeout: 180_000 });
  // U-Boot boots Linux by itself this time (boot.scr on its disk).
  expect((await board.console.run('cut -d" " -f1 /proc/uptime')).only.output).toMatch(/^\d+\.\d+\n$/);
  expect((await board.exec('echo ssh is back')).output).toBe('ssh is back\n');
  console.log(`power ${reboot.powerMs} ms, boot to the console's login prompt ${reboot.bootMs} ms, SSH and shell ${reboot.reconnectMs} ms`);
});

test.afterAll(async ({ lab }) => {
  // Let go of the console: the shell examples (project qemu-board) use it from their own worker.
  await lab.remote('qemu-board').console.close();
});
