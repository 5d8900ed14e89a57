/**
 * Telnet shells against the real inetutils telnetd (via /bin/login) of the container lab:
 * login, state, expects, timeouts, byte-exact output, refused logins, lost connections
 * and the exec pool. Sessions are used directly with `directPath`.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';

import { shellOptionsSchema, telnetOptionsSchema } from '../../src/config/schema.js';
import { ShellPool } from '../../src/session/shellPool.js';
import { type SessionLifecycle, ShellSession } from '../../src/session/shellSession.js';
import { TelnetShellTransport } from '../../src/session/telnetShell.js';
import { directPath } from '../../src/transport/network.js';
import { ConnectionError, TimeoutError } from '../../src/util/errors.js';
import { expect, type LabHost, type StartedLab, test } from '../helpers/containerLab.js';

const T = 15_000;

interface TelnetSetup {
  password?: string | undefined;
  user?: string;
  telnet?: Record<string, unknown>;
  port?: number;
}

function transportFor(lab: StartedLab, setup: TelnetSetup = {}): TelnetShellTransport {
  const device = lab.host('telnetOnly');
  const creds = lab.credentials.user;
  return new TelnetShellTransport({
    host: 'telnet',
    address: device.address,
    path: directPath,
    telnet: telnetOptionsSchema.parse({ port: setup.port ?? device.ports.telnet, ...setup.telnet }),
    user: setup.user ?? creds.username,
    password: 'password' in setup ? setup.password : creds.password,
  });
}

const shell = shellOptionsSchema.parse({ recoveryTimeout: 2_000 });

function telnetSession(lab: StartedLab, name = 'default', setup: TelnetSetup = {}) {
  const lifecycle: SessionLifecycle[] = [];
  const session = new ShellSession({ transport: transportFor(lab, setup), name, shell, observer: { lifecycle: (event) => lifecycle.push(event) } });
  return { session, lifecycle };
}

/** Kills the telnetd serving the shell whose pid is `shellPid` (its grandparent: telnetd → login → shell). */
async function killTelnetdOf(device: LabHost, shellPid: string): Promise<void> {
  const r = await device.exec(`login=$(ps -o ppid= -p ${shellPid}); telnetd=$(ps -o ppid= -p $login); ps -o comm= -p $telnetd; kill -9 $telnetd`);
  expect(r.exitCode, r.output).toBe(0);
  expect(r.output.trim()).toBe('telnetd');
}

test.describe('telnet shell on inetutils telnetd', () => {
  test('logs in and runs commands with their exit codes; the terminal is what we negotiated', async ({ sharedLab }) => {
    const { session, lifecycle } = telnetSession(sharedLab);
    const ok = await session.run('echo hello; whoami', { timeout: T });
    expect(ok.exitCode).toBe(0);
    expect(ok.output).toBe(`hello\n${sharedLab.credentials.user.username}\n`);
    expect((await session.run('false', { timeout: T })).exitCode).toBe(1);
    expect((await session.run('sh -c "exit 42"', { timeout: T })).exitCode).toBe(42);
    const missing = await session.run('no-such-command-lw', { timeout: T });
    expect(missing.exitCode).toBe(127);
    expect(missing.output).toContain('no-such-command-lw');
    // TTYPE and NAWS reached the pty (schema defaults: dumb, 250x50).
    expect((await session.run('echo "$TERM"; stty size', { timeout: T })).output).toBe('dumb\n50 250\n');
    expect(lifecycle).toEqual(['opened']);
    await session.close();
  });

  test('cd and export persist between commands', async ({ sharedLab }) => {
    const { session } = telnetSession(sharedLab);
    await session.run('cd /usr/share && export LW_TELNET=kept', { timeout: T });
    expect((await session.run('pwd; echo $LW_TELNET', { timeout: T })).output).toBe('/usr/share\nkept\n');
    await session.close();
  });

  test('expects answer prompts every time they appear, sudo included', async ({ sharedLab }) => {
    const { session } = telnetSession(sharedLab);
    const twice = await session.run('for i in 1 2; do printf "Continue? [y/n] "; read a; echo " got $a"; done', {
      timeout: T,
      expects: [{ pattern: /\[y\/n\] $/, response: 'y' }],
    });
    expect(twice.output).toBe('Continue? [y/n]  got y\n'.repeat(2));
    // The lab's sudo asks for the password on every call.
    const password = sharedLab.credentials.user.password;
    const sudo = await session.run('sudo -k; sudo id -u; sudo id -un', {
      timeout: T,
      expects: [{ pattern: /\[sudo\] password for [^:]+: $/, response: password, secret: true }],
    });
    expect(sudo.exitCode).toBe(0);
    expect(sudo.output.match(/\[sudo\] password/g)).toHaveLength(2);
    expect(sudo.output.replace(/\[sudo\] password for [^:]+: \n?/g, '')).toBe('0\nroot\n');
    expect(sudo.output).not.toContain(password);
    await session.close();
  });

  test('20 timeouts in a row are each recovered, then a normal command succeeds', async ({ sharedLab }) => {
    const { session, lifecycle } = telnetSession(sharedLab);
    await session.run('cd /tmp', { timeout: T });
    for (let i = 0; i < 20; i++) {
      const r = await session.run(i % 2 ? 'sleep 30' : 'while :; do :; done', { timeout: 300 });
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).toBeNull();
      expect(r.error).toContain('interrupted and recovered');
    }
    expect((await session.run('pwd', { timeout: T })).output).toBe('/tmp\n');
    expect(lifecycle.filter((event) => event === 'recovered')).toHaveLength(20);
    expect(lifecycle).not.toContain('rebuilt');
    await session.close();
  });

  test('a program that ignores SIGINT is ended by the stronger interrupts and the shell survives', async ({ sharedLab }) => {
    const { session, lifecycle } = telnetSession(sharedLab);
    await session.run('export KEEP=1', { timeout: T });
    const r = await session.run(`python3 -c "import signal,time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"`, { timeout: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.error).toContain('interrupted and recovered');
    expect((await session.run('echo $KEEP', { timeout: T })).output).toBe('1\n');
    expect(lifecycle).not.toContain('rebuilt');
    await session.close();
  });

  test('every byte 0x00-0xFF, and random binary data, come back byte-exact through cat', async ({ sharedLab }) => {
    const device = sharedLab.host('telnetOnly');
    const file = `/tmp/lw-allbytes-${test.info().workerIndex}`;
    // All bytes, then the sequences telnet treats specially: CR NUL, CR LF, IAC IAC, CR before other bytes.
    const tricky = Buffer.from([0x0d, 0x00, 0x0d, 0x0a, 0xff, 0xff, 0x0d, 0x0d, 0x00, 0x00, 0xff, 0x0d, 0x2e]);
    const expected = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), tricky]);
    const made = await device.exec(
      `python3 -c "import sys; sys.stdout.buffer.write(bytes(range(256)) + bytes.fromhex('${tricky.toString('hex')}'))" > ${file}`,
      { user: sharedLab.credentials.user.username },
    );
    expect(made.exitCode, made.output).toBe(0);

    const { session } = telnetSession(sharedLab);
    const r = await session.run(`cat ${file}`, { timeout: T });
    expect(r.exitCode).toBe(0);
    expect(r.outputBytes.toString('hex')).toBe(expected.toString('hex'));

    const big = await session.run(`head -c 2000000 /dev/urandom > ${file}.rnd; cat ${file}.rnd`, { timeout: 60_000 });
    expect(big.exitCode).toBe(0);
    const sum = await session.run(`sha256sum < ${file}.rnd | cut -d" " -f1; rm -f ${file} ${file}.rnd`, { timeout: T });
    expect(big.outputBytes.length).toBe(2_000_000);
    expect(createHash('sha256').update(big.outputBytes).digest('hex')).toBe(sum.output.trim());
    await session.close();
  });

  test('named sessions run in parallel, each with its own shell and state', async ({ sharedLab }) => {
    const dir = `/tmp/lw-named-${test.info().workerIndex}-${Date.now()}`;
    const names = ['alpha', 'beta', 'gamma', 'delta'];
    const sessions = names.map((name) => telnetSession(sharedLab, name).session);
    await Promise.all(sessions.map((session, i) => session.run(`mkdir -p ${dir}/${names[i]} && cd ${dir}/${names[i]}`, { timeout: T })));
    // Each waits until every session has created its marker: only concurrent shells finish.
    const results = await Promise.all(
      sessions.map((session) =>
        session.run(
          `touch ../$(basename "$PWD").ready; n=0; while [ "$(ls ${dir}/*.ready | wc -l)" -lt ${names.length} ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; basename "$PWD"; echo $$`,
          { timeout: T },
        ),
      ),
    );
    const pids = new Set<string>();
    results.forEach((r, i) => {
      expect(r.exitCode).toBe(0);
      const [name, pid] = r.output.trim().split('\n');
      expect(name).toBe(names[i]);
      pids.add(pid!);
    });
    expect(pids.size).toBe(names.length);
    const markers = await sessions[0]!.run(`ls ${dir}/*.ready | wc -l; rm -rf ${dir}`, { timeout: T });
    expect(markers.output.trim()).toBe(String(names.length));
    await Promise.all(sessions.map((session) => session.close()));
  });

  test('a wrong password is an auth error naming host and user, without the password', async ({ sharedLab }) => {
    const { session } = telnetSession(sharedLab, 'default', { password: 'wrong-password-lw' });
    const error = await session.run('true', { timeout: T }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionError);
    const failure = error as ConnectionError;
    expect(failure.kind).toBe('auth');
    expect(failure.transient).toBe(false);
    expect(failure.message).toMatch(
      /^telnet \(telnet\): login as "lab" on 127\.0\.0\.1:\d+ was refused: the device answered "Login incorrect"\. Check the user and password of host "telnet"/,
    );
    expect(failure.message).not.toContain('wrong-password-lw');
    expect(session.alive).toBe(false);
  });

  test('login problems that are not refusals: no login prompt, nothing listening', async ({ sharedLab }) => {
    const odd = telnetSession(sharedLab, 'default', { telnet: { loginPrompt: /^Account name: $/, loginTimeout: 2_000 } }).session;
    await expect(odd.run('true', { timeout: T })).rejects.toThrow(
      /telnet \(telnet\): the login on 127\.0\.0\.1:\d+ did not complete within 2\.00 s \(no login prompt seen\); last output: ".*login: "\. Check telnet\.loginPrompt/,
    );
    const ssh = telnetSession(sharedLab, 'default', { port: sharedLab.host('target').ports.ssh!, telnet: { loginTimeout: 2_000 } }).session;
    // An SSH server is no telnet server: it prints its banner, then waits or hangs up.
    await expect(ssh.run('true', { timeout: T })).rejects.toThrow(/\(no login prompt seen\)[^;]*; last output: "SSH-2\.0-OpenSSH/);

    const free = net.createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => free.close(() => resolve()));
    const refused = await telnetSession(sharedLab, 'default', { port })
      .session.run('true', { timeout: T })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refused).toMatchObject({ kind: 'refused' });
    expect((refused as Error).message).toBe(
      `telnet (telnet): cannot connect to 127.0.0.1:${port}: connection refused. Nothing listens there: check the port and that the service runs on the device.`,
    );
  });

  test('a connection killed under a command fails that command clearly; the next command reconnects', async ({ sharedLab }) => {
    const device = sharedLab.host('telnetOnly');
    const { session, lifecycle } = telnetSession(sharedLab);
    await session.run('cd /tmp', { timeout: T });
    const pid = (await session.run('echo $$', { timeout: T })).output.trim();
    let started!: () => void;
    const startedSeen = new Promise<void>((resolve) => (started = resolve));
    // The `x` releases the line: the session holds back a trailing newline that could start its end marker.
    const running = session.run('echo started; printf x; sleep 30', { timeout: 20_000, onLine: (line) => line === 'started' && started() });
    await startedSeen;
    await killTelnetdOf(device, pid);
    const killed = await running;
    expect(killed.exitCode).toBeNull();
    expect(killed.timedOut).toBe(false);
    expect(killed.output).toBe('started\nx');
    expect(killed.error).toMatch(
      /^the shell ended while the command ran \(the telnet connection to 127\.0\.0\.1:\d+ was closed\); the next command opens a new shell$/,
    );
    expect(session.alive).toBe(false);

    const next = await session.run('echo $$; pwd', { timeout: T });
    expect(next.exitCode).toBe(0);
    const [newPid, cwd] = next.output.trim().split('\n');
    expect(newPid).not.toBe(pid);
    expect(cwd).toBe(`/home/${sharedLab.credentials.user.username}`); // a new login: state starts over
    expect(lifecycle).toEqual(['opened', 'lost', 'rebuilt']);

    // Killed while idle: noticed without a command, rebuilt on the next one.
    await killTelnetdOf(device, newPid!);
    await expect.poll(() => session.alive).toBe(false);
    expect((await session.run('echo back', { timeout: T })).output).toBe('back\n');
    await session.close();
  });
});

test.describe('exec pool of logged-in telnet shells', () => {
  test('runs commands concurrently on up to execPoolSize shells; extra commands wait', async ({ sharedLab }) => {
    const dir = `/tmp/lw-pool-${test.info().workerIndex}-${Date.now()}`;
    const pool = new ShellPool({ transport: transportFor(sharedLab), shell, size: 3 });
    await pool.run(`mkdir -p ${dir}`, { timeout: T });
    // Three commands that each wait for the other two: they can only finish together.
    const rendezvous = (i: number) =>
      `touch ${dir}/$$.ready; n=0; while [ "$(ls ${dir}/*.ready | wc -l)" -lt 3 ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; ls ${dir}/*.ready | wc -l; echo ${i}`;
    const results = await Promise.all([0, 1, 2].map((i) => pool.run(rendezvous(i), { timeout: T })));
    results.forEach((r, i) => {
      expect(r.exitCode).toBe(0);
      expect(r.output).toBe(`3\n${i}\n`);
    });
    expect(pool.open).toBe(3);

    // Seven commands on three shells: all run, never more than three shells.
    const many = await Promise.all(Array.from({ length: 7 }, (_, i) => pool.run(`echo job${i} $$`, { timeout: T })));
    expect(many.map((r) => r.output.split(' ')[0])).toEqual(Array.from({ length: 7 }, (_, i) => `job${i}`));
    expect(new Set(many.map((r) => r.output.split(' ')[1]!.trim())).size).toBeLessThanOrEqual(3);
    expect(pool.open).toBe(3);
    await pool.run(`rm -rf ${dir}`, { timeout: T });
    await pool.close();
  });

  test('waiting for a free shell is bounded by the command timeout', async ({ sharedLab }) => {
    const device = sharedLab.host('telnetOnly');
    const gate = `/tmp/lw-gate-${test.info().workerIndex}-${Date.now()}`;
    const pool = new ShellPool({ transport: transportFor(sharedLab), shell, size: 1 });
    await pool.run('true', { timeout: T }); // logged in
    // Holds the only shell until the test opens the gate.
    const busy = pool.run(`n=0; while [ ! -e ${gate} ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; rm -f ${gate}; echo done`, { timeout: T });
    const error = await pool.run('echo never', { timeout: 500 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toBe(
      'telnet (telnet): all 1 exec shells stayed busy for 500 ms; the command was not started. Run fewer commands at once, raise the timeout, or raise the pool size (telnet.execPoolSize).',
    );
    await device.exec(`touch ${gate}`, { user: sharedLab.credentials.user.username });
    expect((await busy).output).toBe('done\n');
    await pool.close();
  });

  test('a pooled shell whose connection died is discarded and replaced', async ({ sharedLab }) => {
    const device = sharedLab.host('telnetOnly');
    const pool = new ShellPool({ transport: transportFor(sharedLab), shell, size: 1 });
    const session = await pool.acquire(T);
    const pid = (await session.run('echo $$', { timeout: T })).output.trim();
    pool.release(session);
    // Killed while idle in the pool. (A command that races the hang-up fails like any
    // command on a dying connection; the pool does not run commands twice.)
    await killTelnetdOf(device, pid);
    await expect.poll(() => session.alive).toBe(false);
    const after = await pool.run('echo $$', { timeout: T });
    expect(after.exitCode).toBe(0);
    expect(after.output.trim()).not.toBe(pid);
    expect(pool.open).toBe(1);
    await pool.close();
    await expect(pool.run('true', { timeout: T })).rejects.toThrow(/the exec shell pool is closed/);
  });

  test('a refused login reaches every caller as the auth error', async ({ sharedLab }) => {
    const pool = new ShellPool({ transport: transportFor(sharedLab, { password: 'wrong-password-lw' }), shell, size: 2 });
    const outcomes = await Promise.allSettled([pool.run('true', { timeout: T }), pool.run('true', { timeout: T }), pool.run('true', { timeout: T })]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ kind: 'auth' });
    }
    expect(pool.open).toBe(0);
    await pool.close();
  });
});
