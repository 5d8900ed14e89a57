/** SSH on real OpenSSH in containers: shells, exec, auth, host keys, transfers, forwards, errors. */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import { secret } from '../../src/host/commands.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import { TranscriptRecorder } from '../../src/playwright/transcript.js';
import { expect, labInput, type StartedLab, test } from '../helpers/containerLab.js';
import { closedPort as freePortNobodyListensOn, readBanner } from '../helpers/net.js';

/** A labwright Lab over the shared containers, with per-host overrides; closed by the caller. */
function labOf(started: StartedLab, overrides: Record<string, Partial<HostInput>> = {}) {
  const lab = new Lab(defineLab(labInput(started, overrides)));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  return { lab, events, target: lab.remote('target') };
}

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'lw-ssh-'));

/** Connects to the target with `override` applied; the error message, or 'connected'. */
async function connectError(started: StartedLab, override: Partial<HostInput>): Promise<string> {
  const { lab, target } = labOf(started, { target: override });
  try {
    await target.exec('true');
    return 'connected';
  } catch (error) {
    return (error as Error).message;
  } finally {
    await lab.close();
  }
}

test.describe('shells over SSH', () => {
  test('state persists, exit codes, one connection for everything', async ({ sharedLab }) => {
    const { lab, events, target } = labOf(sharedLab);
    const r = await target.run(['cd /tmp && export LW=1', 'pwd; echo $LW; whoami', 'false']);
    expect(r.results.map((x) => x.status)).toEqual(['success', 'success', 'failed']);
    expect(r.results[1]!.output).toBe('/tmp\n1\nlab\n');
    expect(r.last.exitCode).toBe(1);
    await target.exec('true');
    await (await target.openSession('second')).run('true');
    expect(events.filter((e) => e.type === 'connection' && e.event === 'connected')).toHaveLength(1);
    await lab.close();
  });

  test('the pty has the configured terminal type and size', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab, { target: { ssh: { termType: 'vt220', cols: 123, rows: 45 } } });
    const r = await target.run('echo $TERM; stty size');
    expect(r.only.output).toBe('vt220\n45 123\n');
    await lab.close();
  });

  test('sudo gets its password through a secret expect, masked in the transcript', async ({ sharedLab }) => {
    const { lab, events, target } = labOf(sharedLab);
    const password = sharedLab.credentials.user.password;
    const r = await target.run('sudo -k; sudo -p "[sudo] password: " id -u', { expects: [[/\[sudo\] password: $/, secret(password)]] });
    expect(r.only.exitCode).toBe(0);
    expect(r.only.output.trim().split('\n').pop()).toBe('0');
    const recorder = new TranscriptRecorder();
    events.forEach((event) => recorder.record(event));
    const transcript = recorder.render('target');
    expect(transcript).toContain('» sent ******');
    expect(transcript).not.toContain(password);
    await lab.close();
  });

  test('the python3 REPL is driven with send and expect', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    await target.send('python3 -q\n');
    await target.expect(/>>> $/);
    await target.send('print(6 * 7)\n');
    const answer = await target.expect(/(\d+)\n>>> $/);
    expect(answer.match[1]).toBe('42');
    await target.send('exit()\n');
    expect((await target.run('echo back in the shell')).only.output).toBe('back in the shell\n');
    await lab.close();
  });

  test('long and multi-line commands, and every byte value, pass through the pty intact', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const long = await target.run(`printf '%s' '${'z'.repeat(10_240)}' | wc -c`);
    expect(long.only.output.trim()).toBe('10240');
    const here = await target.run("cat <<'EOF'\nline one\n\tline 'two'\nEOF");
    expect(here.only.output).toBe("line one\n\tline 'two'\n");
    await sharedLab.host('target').exec(`python3 -c "open('/tmp/allbytes.bin','wb').write(bytes(range(256)))"`);
    const bytes = await target.run('cat /tmp/allbytes.bin');
    expect([...bytes.only.outputBytes]).toEqual(Array.from({ length: 256 }, (_, i) => i));
    await lab.close();
  });

  test('timeouts interrupt the foreground job with Ctrl+C and the shell recovers', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    await target.run('cd /var');
    for (const command of [
      'sleep 60',
      'while :; do :; done',
      'cat',
      `python3 -c "import signal,time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"`,
    ]) {
      const r = await target.run(command, { timeout: 400 });
      expect(r.only.timedOut, command).toBe(true);
      expect(r.only.error).toContain('interrupted and recovered');
    }
    expect((await target.run('pwd')).only.output).toBe('/var\n');
    await lab.close();
  });
});

test.describe('exec over SSH', () => {
  test('stdout and stderr apart, exit code, env, stdin, exit signal', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const r = await target.exec('echo "$LC_LABWRIGHT"; cat; echo oops >&2; exit 7', { env: { LC_LABWRIGHT: 'sent' }, stdin: 'from stdin\n' });
    expect(r.output).toBe('sent\nfrom stdin\n');
    expect(r.stderr).toBe('oops\n');
    expect(r.exitCode).toBe(7);
    const killed = await target.exec('kill -TERM $$');
    expect(killed.signal).toBe('TERM');
    expect(killed.status).toBe('error');
    const pty = await target.exec('tty; echo to-stderr >&2', { pty: true });
    expect(pty.output).toMatch(/^\/dev\/pts\/\d+\nto-stderr\n$/);
    await lab.close();
  });

  test('a timeout ends the remote process', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const r = await target.exec('sleep 317', { timeout: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    // `ps` lists the command line; the pattern cannot match the grep or the shell running it.
    await expect.poll(async () => (await target.exec("ps -eo args | grep -c '^sleep 317$' || true")).output.trim(), { timeout: 10_000 }).toBe('0');
    await lab.close();
  });

  test('many concurrent exec calls share one connection', async ({ sharedLab }) => {
    const { lab, events, target } = labOf(sharedLab);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => target.exec(`echo ${i}`)));
    results.forEach((r, i) => expect(r.output).toBe(`${i}\n`));
    expect(events.filter((e) => e.type === 'connection' && e.event === 'connected')).toHaveLength(1);
    await lab.close();
  });
});

test.describe('authentication', () => {
  const creds = (started: StartedLab) => started.credentials;

  test('password, ed25519 key, RSA key with passphrase, agent and keyboard-interactive TOTP all log in', async ({ sharedLab }) => {
    const c = creds(sharedLab);
    const variants: [string, Partial<HostInput>][] = [
      ['password', { users: { [c.user.username]: { password: c.user.password } }, ssh: { authMethods: ['password'] } }],
      ['ed25519', { users: { [c.user.username]: { privateKey: c.keys.ed25519.privateKeyPath } }, ssh: { authMethods: ['publickey'] } }],
      [
        'rsa+passphrase',
        { users: { [c.user.username]: { privateKey: c.keys.rsa.privateKeyPath, passphrase: c.keys.rsa.passphrase } }, ssh: { authMethods: ['publickey'] } },
      ],
      ['mfa', { user: c.mfa.username, users: { [c.mfa.username]: { password: c.mfa.password, totp: c.mfa.totpSecret } } }],
    ];
    for (const [name, override] of variants) {
      const { lab, target } = labOf(sharedLab, { target: override });
      const r = await target.exec('whoami');
      expect(r.output.trim(), name).toBe(name === 'mfa' ? c.mfa.username : c.user.username);
      await lab.close();
    }
    // ssh-agent holding the ed25519 key.
    const dir = tmp();
    const socket = path.join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      await expect.poll(() => existsSync(socket)).toBe(true);
      execFileSync('ssh-add', [c.keys.ed25519.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
      const { lab, target } = labOf(sharedLab, { target: { users: { [c.user.username]: { agent: socket } }, ssh: { authMethods: ['agent'] } } });
      expect((await target.exec('whoami')).output.trim()).toBe(c.user.username);
      await lab.close();
    } finally {
      agent.kill();
    }
  });

  test('keyboard-interactive rules answer custom prompts', async ({ sharedLab }) => {
    const c = creds(sharedLab);
    const { lab, target } = labOf(sharedLab, {
      target: {
        user: c.mfa.username,
        users: { [c.mfa.username]: { totp: c.mfa.totpSecret } },
        ssh: {
          keyboardInteractive: [
            { prompt: /^Password/, answer: { secret: c.mfa.password } },
            { prompt: /code/i, answer: 'totp' },
          ],
        },
      },
    });
    expect((await target.exec('whoami')).output.trim()).toBe(c.mfa.username);
    await lab.close();
  });

  test('each refusal is its own clear error', async ({ sharedLab }) => {
    const c = creds(sharedLab);
    const attempt = (override: Partial<HostInput>) => connectError(sharedLab, override);
    expect(await attempt({ users: { [c.user.username]: { password: 'not-the-password' } }, ssh: { authMethods: ['password'] } })).toMatch(
      /^target \(ssh\): authentication refused for user "lab" at 127\.0\.0\.1:\d+; tried password \(password\); the server accepts .*Check users\.lab/,
    );
    expect(await attempt({ user: 'nosuchuser', users: { nosuchuser: { password: 'no-such-user-password' } }, ssh: { authMethods: ['password'] } })).toMatch(
      /authentication refused for user "nosuchuser"/,
    );
    expect(await attempt({ users: { [c.user.username]: { privateKey: c.keys.wrong.privateKeyPath } }, ssh: { authMethods: ['publickey'] } })).toMatch(
      /authentication refused for user "lab" .*tried publickey \(key .*id_wrong_ed25519\)/,
    );
    expect(await attempt({ users: { [c.user.username]: { privateKey: c.keys.rsa.privateKeyPath, passphrase: 'wrong passphrase' } } })).toMatch(
      /the private key .*id_rsa is encrypted and the passphrase does not open it.*Set users\.lab\.passphrase/,
    );
    expect(await attempt({ users: { [c.user.username]: { privateKey: c.keys.rsa.privateKeyPath } } })).toMatch(/is encrypted and no passphrase is configured/);
  });

  test('a refused password is tried exactly once', async ({ sharedLab }) => {
    const c = creds(sharedLab);
    const container = sharedLab.host('target');
    const before = (await container.logs(5000)).split('\n').filter((l) => /Failed password for lab /.test(l)).length;
    const { lab, target } = labOf(sharedLab, {
      target: { users: { [c.user.username]: { password: 'wrong-once' } }, ssh: { authMethods: ['password'], connectAttempts: 5 } },
    });
    await expect(target.exec('true')).rejects.toThrow(/authentication refused/);
    await lab.close();
    await expect.poll(async () => (await container.logs(5000)).split('\n').filter((l) => /Failed password for lab /.test(l)).length).toBe(before + 1);
  });
});

test.describe('host keys', () => {
  test('strict policy: plain [host]:port and hashed entries match; unknown, changed and revoked keys are refused', async ({ sharedLab }) => {
    const host = sharedLab.host('target');
    const port = host.ports.ssh!;
    const dir = tmp();
    const lines = host.knownHostsLines;
    const connect = async (known: string, policy: 'strict' | 'accept-new' | 'off' = 'strict', pinFile?: string) => {
      const file = path.join(dir, `kh-${Math.random().toString(36).slice(2)}`);
      writeFileSync(file, known);
      const { lab, target } = labOf(sharedLab, { target: { ssh: { knownHosts: [file], hostKeyPolicy: policy, ...(pinFile ? { pinFile } : {}) } } });
      try {
        return (await target.exec('echo in')).output.trim();
      } catch (error) {
        return (error as Error).message;
      } finally {
        await lab.close();
      }
    };
    expect(await connect(`${lines.join('\n')}\n`)).toBe('in');
    // Hashed with ssh-keygen -H.
    const hashed = path.join(dir, 'hashed');
    writeFileSync(hashed, `${lines.join('\n')}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', hashed], { stdio: 'ignore' });
    const hashedText = readFileSync(hashed, 'utf8');
    expect(hashedText).toMatch(/^\|1\|/m);
    expect(await connect(hashedText)).toBe('in');
    // Unknown.
    expect(await connect('')).toMatch(
      new RegExp(
        `host key of \\[127\\.0\\.0\\.1\\]:${port} \\(ssh-ed25519 SHA256:[^)]+\\) is not in the known_hosts files.*Run \`npx labwright trust \\S+\` to see its fingerprint and pin it`,
      ),
    );
    // Changed: the entry holds another key of the same type.
    const other = execFileSync('ssh-keygen', ['-y', '-f', sharedLab.credentials.keys.wrong.privateKeyPath]).toString().trim().split(' ').slice(0, 2).join(' ');
    const mismatch = await connect(`[127.0.0.1]:${port} ${other}\n`);
    expect(mismatch).toMatch(
      /HOST KEY MISMATCH for \[127\.0\.0\.1\]:\d+: the server presented ssh-ed25519 SHA256:\S+, but known_hosts has ssh-ed25519 SHA256:\S+ /,
    );
    expect(mismatch).toContain('ssh-keygen -R');
    // Revoked.
    const ed = lines
      .find((l) => l.includes('ssh-ed25519'))!
      .split(' ')
      .slice(1)
      .join(' ');
    expect(await connect(`${lines.join('\n')}\n@revoked * ${ed}\n`)).toMatch(/is marked @revoked/);
    // Off: no check at all.
    expect(await connect('', 'off')).toBe('in');
  });

  test('accept-new pins an unknown key to the pin file, then holds the device to it', async ({ sharedLab }) => {
    const dir = tmp();
    const pinFile = path.join(dir, 'pins', 'known_hosts');
    const make = () => labOf(sharedLab, { target: { ssh: { knownHosts: [path.join(dir, 'empty')], hostKeyPolicy: 'accept-new', pinFile } } });
    const first = make();
    await Promise.all([1, 2, 3].map(() => first.target.exec('true')));
    await first.lab.close();
    const pinned = readFileSync(pinFile, 'utf8').trim().split('\n');
    expect(pinned).toHaveLength(1);
    expect(pinned[0]).toMatch(/^\[127\.0\.0\.1\]:\d+ ssh-ed25519 /);
    const second = make();
    expect((await second.target.exec('echo again')).output).toBe('again\n');
    await second.lab.close();
    // A different key under accept-new is a mismatch, not a new pin.
    const other = execFileSync('ssh-keygen', ['-y', '-f', sharedLab.credentials.keys.wrong.privateKeyPath]).toString().trim().split(' ').slice(0, 2).join(' ');
    writeFileSync(pinFile, `${pinned[0]!.split(' ')[0]} ${other}\n`);
    const third = make();
    await expect(third.target.exec('true')).rejects.toThrow(/HOST KEY MISMATCH/);
    await third.lab.close();
  });
});

test.describe('transfers', () => {
  for (const method of ['sftp', 'scp'] as const) {
    test(`${method}: files and directories both ways, verified, with progress`, async ({ sharedLab }) => {
      const { lab, target } = labOf(sharedLab);
      const dir = tmp();
      mkdirSync(path.join(dir, 'tree/sub/deeper'), { recursive: true });
      writeFileSync(path.join(dir, 'tree/a.txt'), 'alpha\n');
      writeFileSync(path.join(dir, 'tree/empty'), '');
      writeFileSync(path.join(dir, 'tree/sub/deeper/big.bin'), Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 7) % 251)));
      const remote = `/tmp/lw-${method}-${Date.now()}`;
      const progress: number[] = [];
      const up = await target.put(path.join(dir, 'tree'), remote, { method, verify: 'sha256', onProgress: (done) => progress.push(done) });
      expect(up).toMatchObject({ files: 3, bytes: 3_000_006, verified: 'sha256', method });
      expect(progress[progress.length - 1]).toBe(3_000_006);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      const remoteSum = (await target.exec(`cd ${remote} && find . -type f | sort | xargs sha256sum`)).output;
      expect(remoteSum).toContain(
        createHash('sha256')
          .update(readFileSync(path.join(dir, 'tree/sub/deeper/big.bin')))
          .digest('hex'),
      );
      const down = await target.get(remote, path.join(dir, 'back'), { method, verify: 'sha256' });
      expect(down.files).toBe(3);
      expect(readFileSync(path.join(dir, 'back/sub/deeper/big.bin'))).toEqual(readFileSync(path.join(dir, 'tree/sub/deeper/big.bin')));
      expect(readFileSync(path.join(dir, 'back/empty')).length).toBe(0);
      const single = await target.put(path.join(dir, 'tree/a.txt'), '~/single.txt', { method });
      expect(single.verified).toBe('size');
      expect((await target.exec('cat ~/single.txt')).output).toBe('alpha\n');
      await expect(target.get('/no/such/file', path.join(dir, 'x'), { method })).rejects.toThrow(
        new RegExp(`target \\(${method}\\): .*/no/such/file.*[Nn]o such file`),
      );
      await lab.close();
    });
  }

  test('sftp reads zero-size pseudo-files completely', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const dir = tmp();
    const r = await target.get('/proc/self/status', path.join(dir, 'status'));
    expect(r.bytes).toBeGreaterThan(100);
    expect(readFileSync(path.join(dir, 'status'), 'utf8')).toMatch(/^Name:/);
    await lab.close();
  });
});

test.describe('port forwarding', () => {
  test('local forward reaches a service as seen from the device; closed with the host', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const forward = await target.forwardLocal('127.0.0.1', 22);
    expect(await readBanner(forward.port)).toMatch(/^SSH-2\.0-OpenSSH/);
    await lab.close();
    await expect(
      new Promise((resolve, reject) => {
        const socket = net.connect(forward.port, '127.0.0.1');
        socket.once('connect', () => resolve('connected'));
        socket.once('error', reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  test('remote forward lets the device reach a runner service on its loopback; closed with the host', async ({ sharedLab }) => {
    const server = net.createServer((socket) => socket.on('data', (data) => socket.end(`echo:${data.toString()}`)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const localPort = (server.address() as net.AddressInfo).port;
    const { lab, target } = labOf(sharedLab);
    const forward = await target.forwardRemote('127.0.0.1', localPort);
    const r = await target.exec(`printf ping | nc -q 2 127.0.0.1 ${forward.port}`);
    expect(r.output).toBe('echo:ping');
    const listening = await target.exec(`ss -ltn | grep -c ':${forward.port} ' || true`);
    expect(listening.output.trim()).toBe('1');
    await forward.close();
    await expect.poll(async () => (await target.exec(`ss -ltn | grep -c ':${forward.port} ' || true`)).output.trim()).toBe('0');
    await lab.close();
    server.close();
  });
});

test.describe('connection failures', () => {
  test('refused port, unknown name, silent and non-SSH listeners each get their own message', async ({ sharedLab }) => {
    const message = (override: Partial<HostInput>) => connectError(sharedLab, override);
    const closedPort = await freePortNobodyListensOn();
    expect(await message({ ssh: { port: closedPort, connectAttempts: 1 } })).toMatch(
      new RegExp(`^target \\(ssh\\): cannot connect to 127\\.0\\.0\\.1:${closedPort}: connection refused\\. Nothing listens there`),
    );
    expect(await message({ address: 'no-such-device.invalid', ssh: { connectAttempts: 1 } })).toMatch(
      /cannot connect to no-such-device\.invalid:\d+: the name no-such-device\.invalid does not resolve/,
    );
    // A listener that accepts and never speaks: a hung sshd, or a proxy in the way.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    expect(await message({ ssh: { port: silentPort, connectTimeout: 1_500, connectAttempts: 1 } })).toMatch(
      new RegExp(
        `^target \\(ssh\\): (no SSH login at 127\\.0\\.0\\.1:${silentPort} within 1\\.50 s|the SSH handshake with 127\\.0\\.0\\.1:${silentPort} did not finish in time)`,
      ),
    );
    silent.close();
    // A listener that accepts and hangs up: not SSH.
    const rude = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => rude.listen(0, '127.0.0.1', resolve));
    const rudePort = (rude.address() as net.AddressInfo).port;
    expect(await message({ ssh: { port: rudePort, connectAttempts: 1 } })).toMatch(/closed before the SSH handshake: nothing there speaks SSH/);
    rude.close();
  });

  test('transient failures are retried with backoff, reported as events', async ({ sharedLab }) => {
    const closedPort = await freePortNobodyListensOn();
    const { lab, events, target } = labOf(sharedLab, { target: { ssh: { port: closedPort, connectAttempts: 3, connectBackoff: 50 } } });
    await expect(target.exec('true')).rejects.toThrow(/connection refused/);
    expect(events.filter((e) => e.type === 'connection' && e.event === 'retry')).toHaveLength(2);
    await lab.close();
  });
});

test.describe('disruptions (private containers)', () => {
  let started: StartedLab;
  test.beforeAll(async () => {
    const { privateLab } = await import('../helpers/containerLab.js');
    started = await privateLab({ roles: ['target'], roleOptions: { target: { maxSessions: 3 } } });
  });
  test.afterAll(async () => {
    await started?.stop();
  });

  test('named sessions beyond MaxSessions fail with an error naming MaxSessions; exec waits for a free channel', async () => {
    const { lab, target } = labOf(started, { target: { shell: { openTimeout: 2_000 } } });
    await target.run('true');
    await target.openSession('a');
    await target.openSession('b');
    await expect(target.openSession('c')).rejects.toThrow(
      /target \(ssh\): no SSH session channel free for shell "c" within 2\.00 s: the server allows 3 per connection \(MaxSessions, probed\) and all are in use \(shell default, shell a, shell b\)/,
    );
    // Closing one frees its channel for exec calls, which wait rather than fail.
    const pending = target.exec('echo waited', { timeout: 10_000 });
    await target.closeSession('a');
    expect((await pending).output).toBe('waited\n');
    await lab.close();
  });

  test('sshd restarted under a live host: the next command reconnects and succeeds', async () => {
    const { lab, events, target } = labOf(started);
    await target.run('cd /tmp');
    await target.exec('true');
    await started.host('target').restartSshd();
    const r = await target.run('pwd');
    expect(r.only.exitCode).toBe(0);
    expect(r.only.output).toBe(`${'/home/lab'}\n`);
    expect((await target.exec('echo exec works')).output).toBe('exec works\n');
    expect(events.filter((e) => e.type === 'connection' && e.event === 'connected').length).toBeGreaterThanOrEqual(2);
    await lab.close();
  });
});

test.afterAll(() => {
  rmSync(path.join(os.tmpdir(), 'lw-ssh-'), { recursive: true, force: true });
});
