/**
 * Shells, expects, timeouts and exec on every userland of the board (one project each):
 * output arrives byte-exact whatever the terminal does, typed text never shows up in
 * expect() output, and nothing typed is lost.
 */
import { mkdirSync, writeFileSync } from 'node:fs';

import { secret } from '../../src/host/commands.js';
import { expect, test } from '../helpers/userlands.js';

/** A shell snippet printing the bytes 0x00-0xFF (printf with octal escapes: any POSIX shell). */
const ALL_BYTES = `printf "$(i=0; while [ $i -lt 256 ]; do printf '\\\\%03o' $i; i=$((i+1)); done)"`;

test("state persists, exit codes are the commands' own, output bytes arrive exactly (tabs, CR, every byte value)", async ({ device }) => {
  const r = await device.run(['cd /tmp && export LW_X=kept', 'pwd; echo "$LW_X"', 'false', '(exit 7)']);
  expect(r.results.map((x) => x.exitCode)).toEqual([0, 0, 1, 7]);
  expect(r.results[1]!.output).toBe('/tmp\nkept\n');
  // BusyBox telnetd's terminal expands tabs and maps NL to CR NL: labwright turns that off.
  expect((await device.run("printf 'a\\tb\\r\\nc\\n'")).only.outputBytes).toEqual(Buffer.from('a\tb\r\nc\n'));
  const bytes = await device.run(ALL_BYTES);
  expect([...bytes.only.outputBytes]).toEqual(Array.from({ length: 256 }, (_, i) => i));
});

test('long and multi-line commands, here-documents, quotes and control characters run intact', async ({ device }) => {
  const long = await device.run(`printf '%s' '${'z'.repeat(10_240)}' | wc -c`);
  expect(long.only.output.trim()).toBe('10240');
  const here = await device.run("X='it''s'\ncat <<EOF\nheredoc $X\n\ttabbed 'quoted'\nEOF");
  expect(here.only.output).toBe("heredoc its\n\ttabbed 'quoted'\n");
  const ctrl = await device.run("printf '%s' '\x03\x04\x1a\x1b' | od -An -tx1");
  expect(ctrl.only.output.trim()).toBe('03 04 1a 1b');
});

test('a syntax error is an exit code, not a stuck shell', async ({ device }) => {
  const r = await device.run('echo "unbalanced');
  expect(r.only.timedOut).toBe(false);
  expect(r.only.exitCode).not.toBe(0);
  expect(r.only.exitCode).not.toBeNull();
  expect((await device.run('echo fine')).only.output).toBe('fine\n');
});

test('expects answer every prompt; a secret response is masked', async ({ device }) => {
  const r = await device.run('printf "User: "; read u; printf "Password: "; read p; printf "Again? "; read a; echo "$u/${#p}/$a"', {
    expects: [
      [/User: $/, 'operator'],
      [/Password: $/, secret('s3cret-board')],
      [/Again\? $/, 'y'],
    ],
  });
  expect(r.only.exitCode).toBe(0);
  expect(r.only.output).toMatch(/operator\/12\/y\n$/);
  expect(r.only.output).not.toContain('s3cret-board');
});

test('typed text never shows up in expect() output, and lines sent while the shell works are all run', async ({ device }) => {
  await device.run('printf "no newline at the end"');
  // The shell reads this itself: with echo, or a line editor redrawing it (zsh's ZLE), the
  // typed text would come before the answer.
  await device.send('echo typed-$((6 * 7))\n');
  const answer = await device.expect(/typed-42\n/);
  expect(answer.before).toBe('');
  // Several lines in one write, the third arriving while the first still runs.
  await device.send('sleep 0.3; echo l1\necho l2\necho l3\n');
  const lines = await device.expect(/l3\n/);
  expect(lines.text).toBe('l1\nl2\nl3\n');
  // A program reading the terminal gets what is sent, and the shell comes back after it.
  await device.send('while read -r x; do [ "$x" = q ] && break; echo "got:$x"; done\n');
  await device.send('first\n');
  expect((await device.expect(/got:\S+\n/)).text).toBe('got:first\n');
  await device.send('q\n');
  expect((await device.run('echo back')).only.output).toBe('back\n');
});

test('timeouts interrupt the foreground job; the shell recovers with its state', async ({ device, land }) => {
  await device.run('cd /usr');
  // The last one ignores Ctrl+C: Ctrl+\ (SIGQUIT) ends it.
  for (const command of ['sleep 60', 'cat', `dash -c 'trap "" INT; sleep 60'`]) {
    const r = await device.run(command, { timeout: 500 });
    expect(r.only.timedOut, command).toBe(true);
    expect(r.only.error, command).toContain('interrupted and recovered');
  }
  expect((await device.run('pwd')).only.output).toBe('/usr\n');
  // A loop of builtins runs in the shell itself. BusyBox ash now and then stops for good
  // when SIGINT interrupts one (it sleeps, reading nothing, about 1 time in 20 over
  // telnet): labwright then closes it, and the next command gets a new shell.
  const loop = await device.run('while :; do :; done', { timeout: 500 });
  expect(loop.only.timedOut).toBe(true);
  expect(loop.only.error).toMatch(land.shell === 'ash' ? /interrupted and recovered|did not recover and was closed/ : /interrupted and recovered/);
  expect((await device.run('echo alive')).only.output).toBe('alive\n');
});

test('a job no interrupt ends is reported, and the next command gets a new shell', async ({ device, land }) => {
  test.skip(land.shell !== 'ash', "the job is BusyBox sh's whatever the login shell: once per protocol is enough");
  // BusyBox sh runs its last command with SIGQUIT ignored; with SIGINT ignored too, neither
  // Ctrl+C, telnet's IP nor Ctrl+\ ends it.
  const r = await device.run(`sh -c 'trap "" INT; sleep 60'`, { timeout: 500 });
  expect(r.only.timedOut).toBe(true);
  expect(r.only.exitCode).toBeNull();
  expect(r.only.error).toContain('the shell did not recover and was closed');
  expect((await device.run('echo fresh')).only.output).toBe('fresh\n');
});

test('terminal settings a command changes are set back before the next command', async ({ device }) => {
  // stty sane: echo, CR NL and output processing on again; tab3 and NL-to-CR-NL on top.
  for (const change of ['stty sane', 'stty tab3 onlcr', 'stty ocrnl']) {
    await device.run(`${change} 2>/dev/null`);
    const r = await device.run("printf 'x\\ty\\r\\n'");
    expect(r.only.outputBytes, change).toEqual(Buffer.from('x\ty\r\n'));
  }
  await device.run('stty echo 2>/dev/null');
  await device.run('true');
  await device.send('echo after-echo\n');
  expect((await device.expect(/after-echo\n/)).before).toBe('');
});

test('named sessions run in parallel, each with its own state', async ({ device }) => {
  const [a, b] = await Promise.all(['a', 'b'].map((name) => device.openSession(name)));
  await device.exec('rm -f /tmp/lw-par-*');
  // Each waits for the other's file: only possible when both run at once.
  const both = await Promise.all(
    [a!, b!].map((s, i) => s.run(`touch /tmp/lw-par-${i}; while [ $(ls /tmp/lw-par-* | wc -l) -lt 2 ]; do sleep 0.05; done; echo ${i}`, { timeout: 10_000 })),
  );
  expect(both.map((r) => r.only.output)).toEqual(['0\n', '1\n']);
});

test.describe('exec', () => {
  test('stdout and stderr apart, exit code, stdin, concurrent calls', async ({ device }) => {
    const r = await device.exec('cd /; cat; echo warn >&2; exit 5', { stdin: 'piped\n' });
    expect([r.output, r.stderr, r.exitCode]).toEqual(['piped\n', 'warn\n', 5]);
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => device.exec(`echo ${i}; exit ${i}`)));
    many.forEach((m, i) => expect([m.output, m.exitCode]).toEqual([`${i}\n`, i]));
  });

  test('a running exec holds up neither another exec nor an SFTP transfer (Dropbear 2022.83 takes exec channels one at a time)', async ({
    device,
    boardLab,
    land,
  }) => {
    test.skip(land.term !== 'ssh', 'SFTP and SSH exec channels: ssh userlands');
    const events: string[] = [];
    const stop = boardLab.events.on(
      (event) => event.type === 'connection' && event.host === device.name && events.push(`${event.event} ${event.detail ?? ''}`),
    );
    const long = device.exec('echo started; sleep 60 && echo never', { timeout: 120_000 });
    await expect
      .poll(async () => (await device.exec("ps -o args | grep -c '^sleep 60$' || true", { timeout: 10_000 })).output.trim(), { timeout: 20_000 })
      .toBe('1');
    mkdirSync(test.info().outputDir, { recursive: true });
    const file = test.info().outputPath('side.txt');
    writeFileSync(file, 'while a command runs\n');
    const put = await device.put(file, '/tmp/lw-side.txt', { verify: 'sha256', timeout: 20_000 });
    expect(put.verified).toBe('sha256');
    expect((await device.exec('cat /tmp/lw-side.txt', { timeout: 20_000 })).output).toBe('while a command runs\n');
    stop();
    // The long command still runs, undisturbed.
    expect((await device.exec("ps -o args | grep -c '^sleep 60$' || true", { timeout: 20_000 })).output.trim()).toBe('1');
    // The board's Dropbear is one of those versions: the transfer and the other commands went to a side connection.
    expect(events.some((line) => line.startsWith('connected ') && line.includes('exec channels one at a time'))).toBe(true);
    expect(events.some((line) => line.startsWith('connected side connection'))).toBe(true);
    await device.exec('kill $(ps -o pid,args | awk \'$2 == "sleep" && $3 == "60" { print $1 }\')');
    expect((await long).output).toBe('started\n');
  });

  test('a timeout ends the remote process', async ({ device }) => {
    const r = await device.exec('sleep 317', { timeout: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    // The exec returns once the process was signalled (INT, then KILL) and its channel closed.
    await expect.poll(async () => (await device.exec("ps -o args | grep -c '^sleep 317$' || true")).output.trim(), { timeout: 3_000 }).toBe('0');
  });

  test('env reaches the command', async ({ device }) => {
    const r = await device.exec('echo "LW_ENV=$LW_ENV"', { env: { LW_ENV: 'from the runner' } });
    expect(r.output).toBe('LW_ENV=from the runner\n');
  });
});
