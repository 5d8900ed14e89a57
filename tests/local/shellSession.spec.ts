/** ShellSession core on a real local bash: markers, output fidelity, expects, timeouts, death. */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import { expect, test } from '@playwright/test';

import { localSession } from '../helpers/localSession.js';

const T = 10_000;

test.describe('output delimiting', () => {
  test('text that looks like markers, including a real earlier marker, does not end a command', async () => {
    const { session, transport } = localSession();
    await session.run('true', { timeout: T });
    const earlier = transport.text().match(/LWE_[a-z0-9]+_[a-z0-9]+:0/g);
    expect(earlier, 'the shell printed an end marker for the first command').not.toBeNull();
    const marker = earlier![earlier!.length - 1]!;
    const start = marker.replace('LWE_', 'LWB_').replace(/:0$/, '');
    const r = await session.run(`echo '${marker}'; echo '${start}'; echo 'LWR_x_y'; printf '\\nLWE_%s:7\\n' fake; echo after`, { timeout: T });
    expect(r.exitCode).toBe(0);
    expect(r.output).toBe(`${marker}\n${start}\nLWR_x_y\n\nLWE_fake:7\nafter\n`);
    await session.close();
  });

  test('output without a trailing newline is kept exactly', async () => {
    const { session } = localSession();
    expect((await session.run('printf "no newline"', { timeout: T })).output).toBe('no newline');
    expect((await session.run('printf "one\\n"', { timeout: T })).output).toBe('one\n');
    expect((await session.run('printf "two\\n\\n"', { timeout: T })).output).toBe('two\n\n');
    expect((await session.run('true', { timeout: T })).output).toBe('');
    await session.close();
  });

  test('binary output arrives byte-exact and UTF-8 decodes across chunk boundaries', async () => {
    const { session } = localSession();
    const all = await session.run(`printf "$(i=0; while [ $i -lt 256 ]; do printf '\\\\%03o' $i; i=$((i+1)); done)"`, { timeout: T });
    expect(all.exitCode).toBe(0);
    expect([...all.outputBytes]).toEqual(Array.from({ length: 256 }, (_, i) => i));

    const utf8 = await session.run(`python3 -c "import sys; sys.stdout.write('é€😀' * 100000)"`, { timeout: T });
    expect(utf8.exitCode).toBe(0);
    expect(utf8.output).toBe('é€😀'.repeat(100000));
    await session.close();
  });

  test('10 MB of output is complete', async () => {
    const { session } = localSession();
    const r = await session.run('head -c 10485760 /dev/urandom | base64 -w 100 > /tmp/lw-10mb.txt; cat /tmp/lw-10mb.txt', { timeout: 60_000 });
    expect(r.exitCode).toBe(0);
    const expected = await session.run('sha256sum < /tmp/lw-10mb.txt | cut -d" " -f1; rm -f /tmp/lw-10mb.txt', { timeout: T });
    expect(createHash('sha256').update(r.outputBytes).digest('hex')).toBe(expected.output.trim());
    expect(r.outputBytes.length).toBeGreaterThan(10 * 1024 * 1024);
    await session.close();
  });

  test('ANSI escape sequences are stripped from text but kept in bytes', async () => {
    const { session } = localSession();
    const r = await session.run(`printf '\\033[1;31mred\\033[0m plain\\r\\n'`, { timeout: T });
    expect(r.output).toBe('red plain\n');
    expect(r.outputBytes.toString()).toContain('\x1b[1;31m');
    await session.close();
  });
});

test.describe('commands that are hard to type', () => {
  test('a 10 KB command runs intact', async () => {
    const { session } = localSession();
    const payload = 'x'.repeat(10 * 1024);
    const r = await session.run(`echo ${payload} | wc -c`, { timeout: T });
    expect(r.exitCode).toBe(0);
    expect(r.output.trim()).toBe(String(payload.length + 1));
    const echoed = await session.run(`printf '%s' '${payload}'`, { timeout: T });
    expect(echoed.output).toBe(payload);
    await session.close();
  });

  test('multi-line commands, here-documents, quotes, tabs and control characters', async () => {
    const { session } = localSession();
    const r = await session.run("X='it''s'\ncat <<EOF\nheredoc $X\n\ttabbed\nEOF\nprintf '%s' \"a\tb\" | od -An -c | tr -s ' '", { timeout: T });
    expect(r.exitCode).toBe(0);
    expect(r.output).toBe('heredoc its\n\ttabbed\n a \\t b\n');
    const ctrl = await session.run("printf '%s' '\x03\x04\x1a' | od -An -tx1", { timeout: T });
    expect(ctrl.output.trim()).toBe('03 04 1a');
    await session.close();
  });

  test('an unbalanced quote is a syntax error with an exit code, not a stuck shell', async () => {
    const { session } = localSession();
    const r = await session.run('echo "unbalanced', { timeout: T });
    expect(r.exitCode).toBe(2);
    expect(r.timedOut).toBe(false);
    expect((await session.run('echo fine', { timeout: T })).output).toBe('fine\n');
    await session.close();
  });
});

test.describe('state, expects and raw interaction', () => {
  test('cd and export persist between commands', async () => {
    const { session } = localSession();
    await session.run('cd /usr/bin && export LW_VAR=kept', { timeout: T });
    const r = await session.run('pwd; echo $LW_VAR', { timeout: T });
    expect(r.output).toBe('/usr/bin\nkept\n');
    await session.close();
  });

  test('a program prompting twice is answered through expects, every time a prompt appears', async () => {
    const { session, sent } = localSession();
    const r = await session.run('printf "Login: "; read u; printf "Password: "; read p; echo "user=$u pass=${#p}"', {
      timeout: T,
      expects: [
        { pattern: /Login: $/, response: 'admin' },
        { pattern: 'Password: ', response: 'hunter22', secret: true },
      ],
    });
    expect(r.output).toBe('Login: Password: user=admin pass=8\n');
    expect(sent).toEqual([
      { text: 'admin\n', secret: false },
      { text: 'hunter22\n', secret: true },
    ]);

    const loop = await session.run('for i in 1 2 3; do printf "Continue? [y/n] "; read a; echo " got $a"; done', {
      timeout: T,
      expects: [{ pattern: /\[y\/n\] $/, response: 'y' }],
    });
    expect(loop.output).toBe('Continue? [y/n]  got y\n'.repeat(3));
    await session.close();
  });

  test('send and expect drive a program between commands', async () => {
    const { session } = localSession();
    await session.send('printf "calc> "; read a b; echo "sum=$((a+b))"\n');
    const prompt = await session.expect(/calc> $/, { timeout: T });
    expect(prompt.match[0]).toBe('calc> ');
    await session.send('2 40\n');
    const sum = await session.expect(/sum=(\d+)/, { timeout: T });
    expect(sum.match[1]).toBe('42');
    await expect(session.expect('never printed', { timeout: 300 })).rejects.toThrow(
      /local \(local\): expect on session "default": \/never printed\/ not seen within 300 ms/,
    );
    expect((await session.run('echo back to commands', { timeout: T })).output).toBe('back to commands\n');
    await session.close();
  });

  test('concurrent runs are serialised and never interleave', async () => {
    const { session } = localSession();
    await session.run('rm -f /tmp/lw-serial.log', { timeout: T });
    await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        session.run(`echo begin${i} >> /tmp/lw-serial.log; sleep 0.0${6 - i}; echo end${i} >> /tmp/lw-serial.log; echo mine${i}`, { timeout: T }),
      ),
    ).then((results) => results.forEach((r, i) => expect(r.output).toBe(`mine${i + 1}\n`)));
    const log = (await session.run('cat /tmp/lw-serial.log; rm -f /tmp/lw-serial.log', { timeout: T })).output.trim().split('\n');
    expect(log).toEqual([1, 2, 3, 4, 5].flatMap((i) => [`begin${i}`, `end${i}`]));
    await session.close();
  });
});

test.describe('timeouts and dead shells', () => {
  test('20 timeouts in a row are each recovered, then a normal command succeeds', async () => {
    const { session, lifecycle } = localSession();
    await session.run('cd /tmp', { timeout: T });
    for (let i = 0; i < 20; i++) {
      const r = await session.run(i % 2 ? 'sleep 30' : 'while :; do :; done', { timeout: 200 });
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).toBeNull();
      expect(r.error).toContain('interrupted and recovered');
    }
    const after = await session.run('pwd', { timeout: T });
    expect(after.output).toBe('/tmp\n');
    expect(lifecycle.filter((e) => e === 'recovered')).toHaveLength(20);
    expect(lifecycle).not.toContain('rebuilt');
    await session.close();
  });

  test('a timed-out command keeps its partial output', async () => {
    const { session } = localSession();
    const r = await session.run('echo partial; sleep 30', { timeout: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.output).toBe('partial\n');
    await session.close();
  });

  test('a program that ignores SIGINT is ended by stronger signals and the shell survives', async () => {
    const { session } = localSession();
    await session.run('export KEEP=1', { timeout: T });
    const r = await session.run(`python3 -c "import signal,time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"`, { timeout: 300 });
    expect(r.timedOut).toBe(true);
    expect((await session.run('echo $KEEP', { timeout: T })).output).toBe('1\n');
    await session.close();
  });

  test('a shell killed under the session is rebuilt on the next call', async () => {
    const { session, lifecycle } = localSession();
    const pid = (await session.run('echo $$', { timeout: T })).output.trim();
    const killed = await session.run('kill -9 $$', { timeout: T });
    expect(killed.exitCode).toBeNull();
    expect(killed.error).toMatch(/shell ended while the command ran.*killed by SIGKILL.*next command opens a new shell/);
    expect(session.alive).toBe(false);
    const next = await session.run('echo $$', { timeout: T });
    expect(next.exitCode).toBe(0);
    expect(next.output.trim()).not.toBe(pid);
    expect(lifecycle).toEqual(['opened', 'lost', 'rebuilt']);
    await session.close();
  });

  test('a shell killed from outside while idle is noticed and rebuilt', async () => {
    const { session } = localSession();
    const pid = Number((await session.run('echo $$', { timeout: T })).output.trim());
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => session.alive).toBe(false);
    expect((await session.run('echo back', { timeout: T })).output).toBe('back\n');
    await session.close();
  });

  test('a failing init command is reported with its output', async () => {
    const { session } = localSession({ init: ['echo preparing; false'] });
    await expect(session.run('true', { timeout: T })).rejects.toThrow(/shell init command "echo preparing; false" exited with 1; output: "preparing\\n"/);
  });
});

test('an output ending in a carriage return keeps it', async () => {
  const { session } = localSession();
  expect((await session.run(`printf 'progress 100%%\\r'`, { timeout: T })).output).toBe('progress 100%\r');
  await session.close();
});

test('a line reaches line listeners as soon as its newline arrives, even if that newline is held back', async () => {
  const { session } = localSession();
  const go = `/tmp/lw-go-${process.pid}-${Date.now()}`;
  const seen: string[] = [];
  // The command prints its second line only after the listener saw the first: a listener
  // that lags one line behind never lets it finish, and the command times out.
  const r = await session.run(`echo early; while [ ! -f ${go} ]; do sleep 0.02; done; rm -f ${go}; echo late`, {
    timeout: 10_000,
    onLine: (line) => {
      seen.push(line);
      if (line === 'early') writeFileSync(go, '');
    },
  });
  expect(r.timedOut).toBe(false);
  expect(r.output).toBe('early\nlate\n');
  expect(seen).toEqual(['early', 'late']);
  await session.close();
});
