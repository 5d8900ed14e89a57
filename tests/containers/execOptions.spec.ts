/**
 * Every documented option of exec() and run() on every remote host kind, as a matrix:
 * SSH (OpenSSH) and telnet (inetutils telnetd, pooled shells). The local host runs the
 * same options in tests/local/aborts.spec.ts and tests/local/localHost.spec.ts.
 */
import { defineLab } from '../../src/config/defineLab.js';
import { Lab } from '../../src/host/lab.js';
import { expect, labInput, test } from '../helpers/containerLab.js';

for (const name of ['target', 'telnet'] as const) {
  test.describe(`exec and run options on ${name === 'target' ? 'SSH' : 'telnet'}`, () => {
    const hostOf = (started: Parameters<typeof labInput>[0]) => {
      const lab = new Lab(defineLab(labInput(started)));
      return { lab, host: lab.remote(name) };
    };

    test('env (any name, not only what AcceptEnv lists), cwd, stdin, exit code, stderr apart', async ({ sharedLab }) => {
      const { lab, host } = hostOf(sharedLab);
      const r = await host.exec('pwd; echo "$NOT_ACCEPTED/$QUOTED"; cat; echo oops >&2; exit 4', {
        env: { NOT_ACCEPTED: 'through', QUOTED: 'it\'s "quoted" $HOME' },
        cwd: '/usr/share',
        stdin: 'from stdin\n',
      });
      expect([r.output, r.stderr, r.exitCode, r.status]).toEqual([`/usr/share\nthrough/it's "quoted" $HOME\nfrom stdin\n`, 'oops\n', 4, 'failed']);
      // A relative cwd starts at the login directory, like `cd` in the login shell.
      expect((await host.exec('pwd', { cwd: '.' })).output).toBe('/home/lab\n');
      await lab.close();
    });

    test('a missing cwd is an error result naming the directory; the command does not run', async ({ sharedLab }) => {
      const { lab, host } = hostOf(sharedLab);
      const r = await host.exec('touch /tmp/lw-should-not-exist', { cwd: '/no/such/dir' });
      expect(r).toMatchObject({ status: 'error', exitCode: null });
      expect(r.error).toMatch(/the working directory "\/no\/such\/dir" does not exist/);
      expect(r.stderr).toBe('');
      expect((await host.exec('test -e /tmp/lw-should-not-exist')).exitCode).toBe(1);
      await lab.close();
    });

    test('pty: the command sees a terminal and its stderr joins the output', async ({ sharedLab }) => {
      const { lab, host } = hostOf(sharedLab);
      const r = await host.exec('test -t 0 && echo tty; echo err >&2', { pty: true });
      expect(r.output.replace(/\r/g, '')).toBe('tty\nerr\n');
      await lab.close();
    });

    test('timeout and signal end the command on the device; the host stays usable', async ({ sharedLab }) => {
      const { lab, host } = hostOf(sharedLab);
      const marker = name === 'target' ? 'sleep 91.7' : 'sleep 92.3';
      const timedOut = await host.exec(marker, { timeout: 500 });
      expect(timedOut).toMatchObject({ timedOut: true, status: 'error', exitCode: null });
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('stop now')), 300);
      const aborted = await host.exec(marker, { signal: controller.signal, timeout: 60_000 });
      expect(aborted).toMatchObject({ aborted: true, status: 'error', exitCode: null });
      expect(aborted.error).toMatch(/aborted/);
      // A list the shell forks for (bash forks the sleep, then would echo) ends too.
      const list = await host.exec(`${marker}; echo never`, { timeout: 500 });
      expect(list).toMatchObject({ timedOut: true, output: '' });
      // Nothing of any of them is left running on the device.
      await expect.poll(async () => (await host.exec(`ps -eo args | grep -c '^${marker}$' || true`)).output.trim(), { timeout: 10_000 }).toBe('0');
      const run = await host.run(['sleep 30', 'echo skipped'], { signal: AbortSignal.timeout(300) });
      expect(run.results.map((result) => result.status)).toEqual(['error', 'skipped']);
      expect((await host.run('echo alive')).last.output).toBe('alive\n');
      await lab.close();
    });

    test("the call's timeout comes before the host's default", async ({ sharedLab }) => {
      const input = labInput(sharedLab);
      input.defaults = { commandTimeout: 500 };
      for (const host of Object.values(input.hosts!)) delete host.commandTimeout;
      const lab = new Lab(defineLab(input));
      const host = lab.remote(name);
      expect((await host.run('sleep 1; echo done', { timeout: 10_000 })).last.output).toBe('done\n');
      expect((await host.exec('sleep 1; echo done', { timeout: 10_000 })).output).toBe('done\n');
      expect((await host.run('sleep 1; echo done')).last.timedOut).toBe(true);
      await lab.close();
    });
  });
}
