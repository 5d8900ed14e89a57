/** LocalHost and the host layer on real processes: run lists, budgets, sessions, exec, transfers. */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { secret } from '../../src/host/commands.js';
import { testLab } from '../helpers/labs.js';

test.describe('run()', () => {
  test('a list shares a timeout budget; commands left when it is spent are reported as skipped', async () => {
    const { lab } = testLab();
    const local = lab.host('local');
    const r = await local.run(['echo one', 'sleep 5', 'echo three', 'echo four'], { timeout: 800 });
    expect(r.results.map((x) => x.status)).toEqual(['success', 'error', 'skipped', 'skipped']);
    expect(r.results[1]!.timedOut).toBe(true);
    expect(r.results[2]!.error).toMatch(/not run: the run's 800 ms timeout budget was spent/);
    expect(r.status).toBe('error');
    expect(r.ok).toBe(false);
    expect(r.output).toBe('one\n');
    await lab.close();
  });

  test('per-command timeouts and expects, stopOnFailure, aggregate status', async () => {
    const { lab } = testLab();
    const local = lab.host('local');
    const r = await local.run(
      [{ cmd: 'printf "Proceed? "; read a; echo "answer=$a"', expects: [['Proceed? ', 'yes']] }, { cmd: 'sleep 5', timeout: 200 }, 'echo reached'],
      {},
    );
    expect(r.results[0]!.output).toBe('Proceed? answer=yes\n');
    expect(r.results[1]!.timedOut).toBe(true);
    expect(r.last.output).toBe('reached\n');

    const stopped = await local.run(['false', 'echo never'], { stopOnFailure: true });
    expect(stopped.results.map((x) => x.status)).toEqual(['failed', 'skipped']);
    expect(stopped.last.error).toMatch(/"false" before it did not succeed \(stopOnFailure\)/);
    expect(stopped.status).toBe('failed');
    expect(() => stopped.only).toThrow(/the run has 2 commands/);
    await lab.close();
  });

  test('events carry every command with its result, and secrets are masked in them', async () => {
    const { lab, events } = testLab();
    const local = lab.host('local');
    await local.run('printf "PIN: "; read pin; echo ok', { expects: [[/PIN: $/, secret('8642')]] });
    const kinds = events.map((e) => e.type);
    expect(kinds).toEqual(['command-start', 'session', 'sent', 'command-output', 'command-end']);
    const sent = events.find((e) => e.type === 'sent');
    expect(sent).toMatchObject({ secret: true });
    const end = events.find((e) => e.type === 'command-end');
    expect(end && end.type === 'command-end' && end.result.exitCode).toBe(0);
    await lab.close();
  });
});

test.describe('sessions', () => {
  test('concurrent opens of one name share one shell; different names are different shells', async () => {
    const { lab } = testLab();
    const local = lab.host('local');
    const same = await Promise.all([1, 2, 3, 4, 5].map(() => local.openSession('mon')));
    expect(new Set(same).size).toBe(1);
    const other = await local.openSession('other');
    const pids = await Promise.all([same[0]!, other].map(async (s) => (await s.run('echo $$')).only.output));
    expect(pids[0]).not.toBe(pids[1]);
    expect(same[0]!.alive).toBe(true);
    await lab.close();
    expect(same[0]!.alive).toBe(false);
  });

  test('named sessions run in parallel with the default session and keep their own state', async () => {
    const { lab } = testLab();
    const local = lab.host('local');
    const side = await local.openSession('side');
    await Promise.all([local.run('cd /usr'), side.run('cd /etc')]);
    expect((await local.run('pwd')).only.output).toBe('/usr\n');
    expect((await side.run('pwd')).only.output).toBe('/etc\n');
    await lab.close();
  });

  test('await using closes a session', async () => {
    const { lab } = testLab();
    const local = lab.host('local');
    let pid = '';
    {
      await using scoped = await local.openSession('scoped');
      pid = (await scoped.run('echo $$')).only.output.trim();
    }
    expect(await local.exec(`kill -0 ${pid}`)).toHaveProperty('exitCode', 1);
    await lab.close();
  });

  test('reserved and unknown names are refused with a clear error', async () => {
    const { lab } = testLab();
    await expect(lab.host('local').openSession('default')).rejects.toThrow(/"default" cannot name a session.*reserved/);
    expect(() => lab.host('locla')).toThrow(/no host named "locla" in the lab; did you mean "local"\? Known hosts: local/);
    await lab.close();
  });
});

test.describe('exec()', () => {
  test('stdout and stderr apart, exit code, env, stdin, cwd', async () => {
    const { lab } = testLab();
    const local = lab.host('local');
    const r = await local.exec('echo "$LW_X"; cat; pwd; echo oops >&2; exit 4', { env: { LW_X: 'envval' }, stdin: 'from stdin\n', cwd: '/usr' });
    expect(r.output).toBe('envval\nfrom stdin\n/usr\n');
    expect(r.stderr).toBe('oops\n');
    expect(r.exitCode).toBe(4);
    expect(r.status).toBe('failed');
    await lab.close();
  });

  test('a timeout ends the whole process group and reports it', async () => {
    const { lab } = testLab();
    const r = await lab.host('local').exec('sleep 30 & sleep 30; echo never', { timeout: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/timed out after 300 ms/);
    await lab.close();
  });

  test('exec calls run concurrently', async () => {
    const { lab } = testLab();
    const local = lab.host('local');
    await local.exec('rm -rf /tmp/lw-conc && mkdir /tmp/lw-conc');
    // Each waits until all four have started: only possible when they run at the same time.
    const results = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        local.exec(`touch /tmp/lw-conc/${i}; while [ $(ls /tmp/lw-conc | wc -l) -lt 4 ]; do sleep 0.05; done; echo ${i}`, { timeout: 10_000 }),
      ),
    );
    expect(results.map((r) => r.output)).toEqual(['1\n', '2\n', '3\n', '4\n']);
    await local.exec('rm -rf /tmp/lw-conc');
    await lab.close();
  });
});

test.describe('put() and get() on the local host', () => {
  test('copies files and directories and verifies them', async () => {
    const { lab, events } = testLab();
    const local = lab.host('local');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lw-copy-'));
    await mkdir(path.join(dir, 'src/sub'), { recursive: true });
    await writeFile(path.join(dir, 'src/a.txt'), 'alpha');
    await writeFile(path.join(dir, 'src/sub/b.bin'), Buffer.alloc(100_000, 7));
    const put = await local.put(path.join(dir, 'src'), path.join(dir, 'dst'));
    expect(put).toMatchObject({ direction: 'put', files: 2, bytes: 100_005, verified: 'size' });
    expect(await readFile(path.join(dir, 'dst/sub/b.bin'))).toEqual(Buffer.alloc(100_000, 7));
    const got = await local.get(path.join(dir, 'dst/a.txt'), path.join(dir, 'back/a.txt'), { verify: 'sha256' });
    expect(got).toMatchObject({ bytes: 5, verified: 'sha256' });
    expect(events.filter((e) => e.type === 'transfer')).toHaveLength(2);
    expect((await local.put(path.join(dir, 'src'), path.join(dir, 'dst2'), { verify: 'sha256' })).verified).toBe('sha256');
    await expect(local.get(path.join(dir, 'missing'), path.join(dir, 'x'))).rejects.toThrow(
      /^local \(local\): get of .*missing to .*x failed: .*missing on the runner: no such file or directory\./,
    );
    await rm(dir, { recursive: true, force: true });
    await lab.close();
  });
});
