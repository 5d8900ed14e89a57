/**
 * The labwright command run as a subprocess against the container lab: every command,
 * hosts behind two hops, `shell` on a pseudo-terminal, progress on a terminal and in plain
 * mode, trust into a fresh ~/.ssh, and a real OpenSSH client config driving the topology.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput, LabInput } from '../../src/config/index.js';
import { Lab } from '../../src/host/lab.js';
import { runCliOnPty, runCliProcess } from '../helpers/cli.js';
import { expect, knownHostsFile, labInput, privateLab, type StartedLab, test } from '../helpers/containerLab.js';
import { closedPort } from '../helpers/net.js';

// One lab for the whole file; its tests run in order in one worker.
test.describe.configure({ mode: 'default' });

let started: StartedLab;
let work: string;
test.beforeAll(async () => {
  started = await privateLab({ roles: ['target', 'telnetOnly', 'bastion', 'mid', 'inner'] });
  work = mkdtempSync(path.join(os.tmpdir(), 'lw-cli-'));
});
test.afterAll(async () => {
  await started?.stop();
});

/** Writes a lab file (JSON, as defineLab takes it) and returns its path. */
function labFile(name: string, input: LabInput): string {
  const file = path.join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify(input));
  return file;
}

test('check: a table per host through the hops; a failing host exits 1 naming it and the reason', async () => {
  const input = labInput(started);
  const target = input.hosts!.target!;
  input.hosts!.refused = { ...target, ssh: { ...target.ssh, port: await closedPort(), connectAttempts: 1 } };
  input.hosts!.badauth = { ...target, users: { lab: { password: 'not-the-password' } }, ssh: { ...target.ssh, authMethods: ['password'] } };
  const file = labFile('check', input);

  const good = await runCliProcess(['-l', file, 'check', 'target', 'telnet', 'deep']);
  expect(good.code, good.stderr).toBe(0);
  const deep = good.stdout.slice(good.stdout.indexOf('deep ('));
  expect(deep).toMatch(/^deep \(ssh, via bastion → mid\): OK/);
  for (const row of ['reachable', 'host key known', 'auth', 'MaxSessions', 'shell answers', 'transfer \\(sftp\\)', 'round trip']) {
    expect(deep).toMatch(new RegExp(`^  ✔  ${row} `, 'm'));
  }
  expect(deep).toMatch(/✔ {2}reachable +\d+\.\d+\.\d+\.\d+:22 via bastion → mid, connected in .*SSH-2\.0-OpenSSH/);
  expect(deep).toMatch(/✔ {2}MaxSessions +10 \(probed\)/);
  expect(deep).toMatch(/✔ {2}round trip +\d+\.\d ms \(median of 5 exec\)/);
  expect(good.stdout).toMatch(/^telnet \(telnet\): OK\n {2}✔ {2}reachable .*\n {2}✔ {2}shell answers +logged in as lab/m);

  const bad = await runCliProcess(['-l', file, 'check', 'target', 'refused', 'badauth']);
  expect(bad.code).toBe(1);
  expect(bad.stdout).toMatch(/^target \(ssh\): OK/m);
  expect(bad.stdout).toMatch(
    /^refused \(ssh\): FAILED\n {2}✘ {2}reachable +refused \(ssh\): cannot connect to 127\.0\.0\.1:\d+: connection refused\.[^\n]*\n {2}– {2}host key known +not run: reachable failed/m,
  );
  expect(bad.stdout).toMatch(/^badauth \(ssh\): FAILED\n( {2}✔ .*\n){2} {2}✘ {2}auth +badauth \(ssh\): authentication refused for user "lab"/m);
  expect(bad.stderr).toMatch(/^labwright: refused failed "reachable": refused \(ssh\): cannot connect/m);
  expect(bad.stderr).toMatch(/^labwright: badauth failed "auth": /m);
  expect(bad.stderr).not.toContain('not-the-password');

  const noConfig = await runCliProcess(['-l', file, '--ssh-config', path.join(work, 'absent'), 'check', 'target']);
  expect(noConfig.code).toBe(1);
  expect(noConfig.stderr).toMatch(/sshConfig: cannot read .*absent \(no such file\); fix the path/);

  const unknown = await runCliProcess(['-l', file, 'check', 'targte']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/no host named "targte"; did you mean "target"\?/);
});

test('run: output streamed, stderr apart, the exit status passed on, a timeout exits 124', async () => {
  const file = labFile('run', labInput(started));
  const ok = await runCliProcess(['-l', file, 'run', 'deep', '--', 'hostname;', 'echo to-stderr >&2;', 'exit 3']);
  expect(ok).toEqual({ code: 3, stdout: 'inner\n', stderr: 'to-stderr\n' });
  const telnet = await runCliProcess(['-l', file, 'run', 'telnet', '--', 'echo "$((6*7))"']);
  expect(telnet).toMatchObject({ code: 0, stdout: '42\n' });
  const slow = await runCliProcess(['-l', file, 'run', '--timeout', '1000', 'target', '--', 'echo started; sleep 30']);
  expect(slow.code).toBe(124);
  expect(slow.stdout).toBe('started\n');
  expect(slow.stderr).toMatch(/labwright: target: timed out after 1\.00 s/);
});

test('shell: an interactive terminal through two hops, window size changes, the exit status', async () => {
  const file = labFile('shell', labInput(started));
  const run = await runCliOnPty(
    ['-l', file, 'shell', 'deep'],
    [
      { size: [101, 31] },
      { expect: '\\$ $' },
      { send: 'stty size; echo "term is $TERM"; hostname\r' },
      { expect: 'term is xterm-256color\\r?\\r\\ninner' },
      { size: [133, 44] },
      { sleep: 0.5 },
      { send: 'stty size\r' },
      { expect: '44 133' },
      // Raw mode: Ctrl+C reaches the remote foreground job, not labwright.
      { send: 'sleep 20\r' },
      { sleep: 0.5 },
      { send: '\x03' },
      { expect: '\\$ $' },
      { send: 'echo still here; exit 7\r' },
    ],
  );
  expect(run.error).toBeNull();
  expect(run.output).toMatch(/31 101\r?\r\nterm is xterm-256color/);
  expect(run.output).toContain('still here');
  expect(run.exit).toBe(7);
});

test('put and get: verified copies; a progress bar on a terminal, plain lines otherwise', async () => {
  const file = labFile('transfer', labInput(started));
  const local = path.join(work, 'payload.bin');
  writeFileSync(local, Buffer.from(Array.from({ length: 8_000_000 }, (_, i) => (i * 7) % 251)));

  const plain = await runCliProcess(['-l', file, 'put', 'inner', local, '/tmp/lw-cli-payload.bin']);
  expect(plain.code, plain.stderr).toBe(0);
  expect(plain.stdout).toMatch(
    /^inner: put .*payload\.bin → \/tmp\/lw-cli-payload\.bin: 1 file\(s\), 7\.6 MiB in \d+\.\d s \(.* MiB\/s\) by sftp, verified size\n$/,
  );
  // Plain mode: whole lines, no carriage returns or escapes.
  expect(plain.stderr).not.toMatch(/[\r\x1b]/);
  expect(plain.stderr).toMatch(/^(put payload\.bin: +\d+% [\d.]+ [KM]?i?B\/7\.6 MiB [\d.]+ [KMG]?i?B\/s ETA \d+:\d\d\n)+$/);

  const back = path.join(work, 'back.bin');
  const tty = await runCliOnPty(['-l', file, 'get', '--verify', 'sha256', 'inner', '/tmp/lw-cli-payload.bin', back], [{ size: [120, 30] }]);
  expect(tty.exit, tty.output).toBe(0);
  expect(readFileSync(back)).toEqual(readFileSync(local));
  // On a terminal: a bar redrawn in place (carriage return, erase to end of line), finished with a newline.
  expect(tty.output).toMatch(/\rget lw-cli-payload\.bin \[#+-*\] +\d+% .*\/7\.6 MiB .*\/s ETA \d+:\d\d\x1b\[K/);
  expect(tty.output).toMatch(/\[#{24}\] 100% 7\.6 MiB\/7\.6 MiB .*\x1b\[K\r?\n/);
  expect(tty.output).toMatch(/inner: get \/tmp\/lw-cli-payload\.bin → .*back\.bin: 1 file\(s\), 7\.6 MiB .* verified sha256/);
  expect(tty.output.match(/\r(?!\n)/g)!.length).toBeGreaterThan(1);

  const ftp = await runCliProcess(['-l', file, 'get', '--method', 'ftp', '--progress', 'none', 'telnet', '/etc/hostname', path.join(work, 'hostname')]);
  expect(ftp.code, ftp.stderr).toBe(0);
  expect(ftp.stderr).toBe('');
  expect(readFileSync(path.join(work, 'hostname'), 'utf8')).toBe('telnet-only\n');
});

test('trust: shows the fingerprints along the chain and pins them into a fresh ~/.ssh with the right modes', async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'lw-cli-home-'));
  const input = labInput(started);
  // No known_hosts configured: the default ~/.ssh/known_hosts of a fresh runner, which does not exist.
  for (const host of Object.values(input.hosts!)) delete (host.ssh as { knownHosts?: string[] }).knownHosts;
  const file = labFile('trust', input);
  const env = { HOME: home };

  const before = await runCliProcess(['-l', file, 'run', 'deep', '--', 'true'], { env });
  expect(before.code).toBe(255);
  expect(before.stderr).toMatch(
    /bastion \(ssh\): the host key of \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:\S+\) is not in any known_hosts file .*Run `npx labwright trust bastion` to see its fingerprint and pin it to ~\/\.ssh\/known_hosts,/,
  );

  const wrong = await runCliProcess(['-l', file, 'trust', 'target', '--fingerprint', 'SHA256:AAAAnotthekey'], { env });
  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toMatch(/target \(ssh\): the key's fingerprint is SHA256:\S+, not SHA256:AAAAnotthekey; it is not pinned\. Someone may be intercepting/);

  const trusted = await runCliProcess(['-l', file, 'trust', 'deep'], { env });
  expect(trusted.code, trusted.stderr).toBe(0);
  const expected = execFileSync('ssh-keygen', ['-lf', '-'], { input: `x ${started.host('bastion').hostKeys.ed25519}\n` })
    .toString()
    .split(' ')[1];
  expect(trusted.stdout).toMatch(
    new RegExp(
      `^bastion: \\[127\\.0\\.0\\.1\\]:\\d+ presents ssh-ed25519 ${expected!.replace(/[+/]/g, '\\$&')}\\nbastion: pinned to ${home}/\\.ssh/known_hosts\\n`,
    ),
  );
  expect(trusted.stdout).toMatch(/^mid: \S+ presents ssh-ed25519 SHA256:\S+\nmid: pinned to /m);
  expect(trusted.stdout).toMatch(/^deep: \S+ via bastion → mid presents ssh-ed25519 SHA256:\S+\ndeep: pinned to /m);
  expect(statSync(path.join(home, '.ssh')).mode & 0o777).toBe(0o700);
  expect(statSync(path.join(home, '.ssh/known_hosts')).mode & 0o777).toBe(0o600);
  // OpenSSH reads what was pinned.
  const known = readFileSync(path.join(home, '.ssh/known_hosts'), 'utf8');
  expect(known.trim().split('\n')).toHaveLength(3);
  const bastionPort = started.host('bastion').ports.ssh!;
  expect(execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${bastionPort}`, '-f', path.join(home, '.ssh/known_hosts')]).toString()).toContain('ssh-ed25519');

  const after = await runCliProcess(['-l', file, 'run', 'deep', '--', 'hostname'], { env });
  expect(after).toMatchObject({ code: 0, stdout: 'inner\n' });
  const again = await runCliProcess(['-l', file, 'trust', 'bastion'], { env });
  expect(again.stdout).toMatch(/bastion: already trusted \(.*known_hosts:1\)/);

  // A different key already known for the host is refused, not replaced.
  writeFileSync(
    path.join(home, '.ssh/known_hosts'),
    `[127.0.0.1]:${started.host('target').ports.ssh} ${execFileSync('ssh-keygen', ['-y', '-f', started.credentials.keys.wrong.privateKeyPath]).toString().trim()}\n`,
  );
  const changed = await runCliProcess(['-l', file, 'trust', 'target'], { env });
  expect(changed.code).toBe(1);
  expect(changed.stderr).toMatch(/target \(ssh\): another key is already known for \[127\.0\.0\.1\]:\d+ .*ssh-keygen -R/);
});

test('a real OpenSSH client config drives the two-hop topology, for ssh, the CLI and the lab config alike', async () => {
  const creds = started.credentials;
  const knownHosts = knownHostsFile(started);
  const key = creds.keys.ed25519.privateKeyPath;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-cli-sshcfg-'));
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'config');
  const common = `  User ${creds.user.username}\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${knownHosts}\n  StrictHostKeyChecking yes\n`;
  writeFileSync(
    config,
    `Host lw-bastion\n  HostName 127.0.0.1\n  Port ${started.host('bastion').ports.ssh}\n${common}` +
      `Host lw-mid\n  HostName ${started.host('mid').endpoints.bastion!.host}\n  ProxyJump lw-bastion\n${common}` +
      `Host lw-deep\n  HostName ${started.host('inner').endpoints.mid!.host}\n  ProxyJump lw-bastion,lw-mid\n${common}`,
  );
  // The OpenSSH client itself takes this file: it is a real, working config.
  const viaOpenSsh = execFileSync('ssh', ['-F', config, '-o', 'BatchMode=yes', 'lw-deep', 'hostname'], { timeout: 60_000 }).toString();
  expect(viaOpenSsh).toBe('inner\n');

  // The CLI, with no lab file at all.
  const env = { HOME: dir };
  const run = await runCliProcess(['--ssh-config', config, 'run', 'lw-deep', '--', 'hostname'], { env });
  expect(run).toMatchObject({ code: 0, stdout: 'inner\n' });
  const check = await runCliProcess(['--ssh-config', config, 'check', 'lw-deep'], { env });
  expect(check.code, check.stdout + check.stderr).toBe(0);
  expect(check.stdout).toMatch(/^lw-deep \(ssh, via lw-bastion → lw-mid\): OK/);
  expect(check.stdout).toMatch(new RegExp(`host key known +ssh-ed25519 SHA256:\\S+ \\(${knownHosts.replace(/[/.]/g, '\\$&')}:\\d+\\)`));

  // The lab config: sshConfig plus the lab's own entry, which wins field by field.
  const input: LabInput = {
    sshConfig: config,
    hosts: { 'lw-deep': { commandTimeout: 9_000, users: { [creds.user.username]: { password: creds.user.password } } } as HostInput },
  };
  const lab = new Lab(defineLab(input));
  try {
    const deep = lab.config.hosts['lw-deep']!;
    expect(deep).toMatchObject({ hop: 'lw-mid', commandTimeout: 9_000, user: creds.user.username });
    expect(deep.users[creds.user.username]).toEqual({ password: creds.user.password, privateKey: key });
    expect(lab.config.hosts['lw-mid']!.hop).toBe('lw-bastion');
    expect((await lab.host('lw-deep').run('hostname')).only.output).toBe('inner\n');
  } finally {
    await lab.close();
  }
});
