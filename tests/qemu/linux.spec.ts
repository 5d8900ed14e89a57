/**
 * Shell mode on a real Linux serial console (BusyBox getty and ash on ttyS0 of a QEMU
 * board): console login, exit codes, 1 MB of output, expects, timeouts recovered with
 * Ctrl+C, kernel messages in the middle of command output, terminal queries, and
 * waitFor() through reboots (a reboot, a QMP hard reset, QEMU quit and restarted).
 */
import { secret } from '../../src/host/commands.js';
import { expect, test } from '../helpers/qemuLab.js';

test.describe.configure({ mode: 'default' });

test('the console logs in and runs commands with exit codes, keeping shell state', async ({ linux }) => {
  const { host } = linux;
  const r = await host.run(['cd /tmp', 'export GREETING="hi there"', 'pwd', 'echo "$GREETING"', 'false', 'sh -c "exit 42"']);
  expect(r.results[2]).toHaveOutput('/tmp');
  expect(r.results[3]!.output).toBe('hi there\n');
  expect(r.results[4]).toHaveExitCode(1);
  expect(r.results[5]).toHaveExitCode(42);
  expect(r.results.every((result) => result.protocol === 'console')).toBe(true);
  // One shell per console: the console's own session is the host's shell.
  expect((await host.console.run('pwd')).only.output).toBe('/tmp\n');
});

test('1 MB of output arrives exactly', async ({ linux }) => {
  const r = await linux.host.run("i=0; while [ $i -lt 16384 ]; do printf '%063d\\n' $i; i=$((i+1)); done", { timeout: 120_000 });
  expect(r).toSucceed();
  const lines = r.only.output.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines.length).toBe(16_384);
  expect(r.only.outputBytes.length).toBe(16_384 * 64);
  lines.forEach((line, i) => {
    if (line !== String(i).padStart(63, '0')) throw new Error(`line ${i} is ${JSON.stringify(line)}`);
  });
});

test('long lines are neither wrapped at 80 columns nor cut, typed or printed', async ({ linux }) => {
  const word = 'x'.repeat(300);
  const r = (await linux.host.run(`echo ${word} | wc -c; printf '%0500d\\n' 7`)).only;
  expect(r.output).toBe(`301\n${'0'.repeat(499)}7\n`);
});

test('expects answer interactive prompts on the console', async ({ linux }) => {
  const r = await linux.host.run('printf "Name: "; read name; printf "Code: "; read code; echo "hello $name, ${#code} digits"', {
    expects: [
      [/Name: $/, 'operator'],
      [/Code: $/, secret('9876543')],
    ],
  });
  expect(r).toSucceed();
  expect(r.only.output).toContain('hello operator, 7 digits');
  expect(r.only.output).not.toContain('9876543');
});

test('a hung command times out, Ctrl+C recovers the console shell', async ({ linux }) => {
  const hung = (await linux.host.run('echo started; sleep 3600', { timeout: 1_500 })).only;
  expect(hung.timedOut).toBe(true);
  expect(hung.output).toContain('started');
  expect(hung.error).toMatch(/interrupted and recovered/);
  const after = await linux.host.run(['echo recovered', 'pwd']);
  expect(after.results[0]).toHaveOutput('recovered');
  expect(after.results[1]!.output).toBe('/tmp\n');
});

test('kernel messages written to the console during a command stay out of its output', async ({ linux }) => {
  const { host, events } = linux;
  expect(await host.run('echo 8 > /proc/sys/kernel/printk')).toSucceed();
  const from = events.length;
  const script = [
    'i=0',
    'while [ $i -lt 40 ]; do',
    '  echo "labwright-kmsg-$i" > /dev/kmsg',
    '  printf "out-%02d:" $i; printf "tail\\n"',
    '  i=$((i+1))',
    'done',
    'exit 3',
  ].join('\n');
  const r = (await host.run(`(${script})`)).only;
  expect(r.exitCode).toBe(3);
  const expected = Array.from({ length: 40 }, (_, i) => `out-${String(i).padStart(2, '0')}:tail\n`).join('');
  expect(r.output).toBe(expected);
  // The kernel lines are kept apart: reported as kernel events, and in the console log.
  const kernel = events
    .slice(from)
    .filter((event) => event.type === 'kernel')
    .map((event) => (event as { line: string }).line);
  expect(kernel.filter((line) => /labwright-kmsg-\d+$/.test(line)).length).toBe(40);
  expect(kernel[0]).toMatch(/^\[ *\d+\.\d+\] labwright-kmsg-0$/);
  // dmesg prints the same lines (LF-terminated): its output is not filtered.
  const dmesg = (await host.run('dmesg | grep -c labwright-kmsg-')).only;
  expect(dmesg.output).toBe('40\n');
  expect((await host.run('dmesg | grep labwright-kmsg-39')).only.output).toMatch(/^\[ *\d+\.\d+\] labwright-kmsg-39\n$/);
  await host.run('echo 4 > /proc/sys/kernel/printk');
});

test('terminal queries are answered like a terminal would (cursor position)', async ({ linux }) => {
  // A program asks where the cursor is and reads the reply from the terminal.
  const r = (
    await linux.host.run(
      "stty -icanon min 0 time 20; printf '\\033[6n'; reply=$(dd bs=1 count=6 2>/dev/null | od -An -c | tr -d ' '); stty icanon; echo \"$reply\"",
    )
  ).only;
  expect(r.output).toContain('033[1;1R');
});

test('waitFor follows the console through a reboot, a hard reset and a power cycle', async ({ linux }) => {
  const { host, board } = linux;
  const console = host.console;
  // A reboot from the shell: the next login prompt, then the shell logs in again.
  console.skipOutput();
  await console.send('reboot\n');
  await console.waitFor(/login: $/, { timeout: 60_000 });
  expect((await host.run('cat /proc/uptime')).only.output).toMatch(/^\d+\.\d+ /);

  // QMP system_reset: the TCP connection stays, the board starts over.
  console.skipOutput();
  await board.reset();
  await console.waitFor(/login: $/, { timeout: 60_000 });

  // Power off and on again (QEMU quits and restarts on the same port): the connection
  // drops, waitFor reconnects and keeps waiting.
  console.skipOutput();
  await board.quit();
  const waiting = console.waitFor(/login: $/, { timeout: 60_000 });
  await board.start();
  await board.powerOn();
  await waiting;
  const r = await host.run('echo back after power cycle');
  expect(r).toHaveOutput('back after power cycle');
  expect(linux.events.some((event) => event.type === 'connection' && event.protocol === 'console' && event.event === 'lost')).toBe(true);
});
