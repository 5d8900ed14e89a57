/**
 * Reverse SFTP share on real OpenSSH: the device's own `sftp` (and `sshfs` where FUSE is
 * available) reaches a runner folder through a remote forward served in-process.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import type { RemoteHost } from '../../src/host/remoteHost.js';
import type { Share } from '../../src/share/share.js';
import { expect, labInput, privateLab, type StartedLab, test } from '../helpers/containerLab.js';

function labOf(started: StartedLab, overrides: Record<string, Partial<HostInput>> = {}) {
  const lab = new Lab(defineLab(labInput(started, overrides)));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  return { lab, events, target: lab.remote('target') };
}

/**
 * A runner folder to share, next to things that must stay untouched:
 *   base/secret.txt, base/outside/inner.txt
 *   base/share/hello.txt, base/share/sub/deep.txt
 *   base/share/out -> ../secret.txt, base/share/outdir -> <base>/outside (absolute)
 */
function folders() {
  const base = mkdtempSync(path.join(os.tmpdir(), 'lw-share-'));
  const share = path.join(base, 'share');
  mkdirSync(path.join(share, 'sub'), { recursive: true });
  mkdirSync(path.join(base, 'outside'));
  writeFileSync(path.join(base, 'secret.txt'), 'RUNNER SECRET\n');
  writeFileSync(path.join(base, 'outside', 'inner.txt'), 'OUTSIDE\n');
  writeFileSync(path.join(share, 'hello.txt'), 'hello from the runner\n');
  writeFileSync(path.join(share, 'sub', 'deep.txt'), 'deep\n');
  symlinkSync('../secret.txt', path.join(share, 'out'));
  symlinkSync(path.join(base, 'outside'), path.join(share, 'outdir'));
  return { base, share };
}

/** Every path under `dir` with what it is: file content, link target or directory. */
function snapshot(dir: string, skip?: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (current: string) => {
    for (const name of readdirSync(current)) {
      const full = path.join(current, name);
      if (full === skip) continue;
      const stats = lstatSync(full);
      const key = path.relative(dir, full);
      if (stats.isSymbolicLink()) out[key] = `link ${readlinkSync(full)}`;
      else if (stats.isDirectory()) {
        out[key] = 'dir';
        walk(full);
      } else out[key] = `file ${(stats.mode & 0o777).toString(8)} ${readFileSync(full, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

/** Runs sftp commands on the device in batch mode (stops at the first failing command). */
function sftp(host: RemoteHost, share: Share, commands: string[]) {
  return host.exec(share.sftpCommand(['-b', '-']), { stdin: `${commands.join('\n')}\n`, timeout: 30_000 });
}

/** A scratch directory on the device. */
async function remoteTmp(host: RemoteHost): Promise<string> {
  const r = await host.exec('mktemp -d /tmp/lw-share-XXXXXX');
  expect(r.exitCode).toBe(0);
  return r.output.trim();
}

/** Whether the device listens on its loopback port. */
async function listening(host: RemoteHost, port: number): Promise<boolean> {
  const r = await host.exec(`ss -Htln 'sport = :${port}'`);
  return r.output.trim() !== '';
}

test.describe('reverse SFTP share', () => {
  test("the device's sftp client reads and writes the shared folder", async ({ sharedLab }) => {
    const { lab, events, target } = labOf(sharedLab);
    const { share: dir } = folders();
    await using share = await target.share(dir);
    const tmp = await remoteTmp(target);
    await target.exec(`printf 'made on the device\\n' > ${tmp}/up.txt`);
    // The command line: this key, this host key, no agent, no config, the forwarded port.
    expect(share.sftpCommand()).toBe(
      `sftp -F /dev/null -o IdentityFile=${share.keyFile} -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile=${share.knownHostsFile} ` +
        `-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o PreferredAuthentications=publickey -o BatchMode=yes -B 131072 -P ${share.remotePort} share@127.0.0.1`,
    );
    expect(share.keyFile).toMatch(new RegExp(`^/home/lab/\\.cache/labwright/share-${share.id}/id_ed25519$`));
    const r = await sftp(target, share, [
      `get hello.txt ${tmp}/hello.txt`,
      'mkdir made',
      `put ${tmp}/up.txt made/up.txt`,
      'ls -l made',
      'rename made/up.txt made/renamed.txt',
      'chmod 600 made/renamed.txt',
    ]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/^-rw-r--r-- +1 \d+ +\d+ +19 \w{3} [ \d]\d \d\d:\d\d up\.txt$/m);
    expect((await target.exec(`cat ${tmp}/hello.txt`)).output).toBe('hello from the runner\n');
    expect(readFileSync(path.join(dir, 'made', 'renamed.txt'), 'utf8')).toBe('made on the device\n');
    expect(lstatSync(path.join(dir, 'made', 'renamed.txt')).mode & 0o777).toBe(0o600);
    // ln -s (OpenSSH swaps SYMLINK's arguments; the link must still point where asked).
    // sftp keeps a relative link target as typed: relative to the link's folder.
    expect((await sftp(target, share, ['ln -s ../hello.txt made/link', `get made/link ${tmp}/via-link.txt`])).exitCode).toBe(0);
    expect(readlinkSync(path.join(dir, 'made', 'link'))).toBe('../hello.txt');
    expect((await target.exec(`cat ${tmp}/via-link.txt`)).output).toBe('hello from the runner\n');
    expect(events.some((e) => e.type === 'connection' && e.protocol === 'share' && e.event === 'connected')).toBe(true);
    await share.stop();
    await lab.close();
  });

  test('sshfs where the device has no FUSE: a clear reason, and the exact command line', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const { share: dir } = folders();
    await using share = await target.share(dir);
    const commands = await share.clientCommands('/tmp/lw-mnt');
    expect(commands.sftp).toBe(share.sftpCommand());
    expect(commands.sshfs).toBeUndefined();
    expect(commands.unavailable.sshfs).toBe('the device has no /dev/fuse (containers need --device /dev/fuse and CAP_SYS_ADMIN)');
    expect(share.sshfsCommand('/tmp/lw-mnt')).toBe(
      `sshfs -F /dev/null -p ${share.remotePort} -o IdentityFile=${share.keyFile} -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile=${share.knownHostsFile} ` +
        '-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o PreferredAuthentications=publickey -o BatchMode=yes share@127.0.0.1:/ /tmp/lw-mnt',
    );
    // The command itself fails exactly for that reason.
    const r = await target.exec(`mkdir -p /tmp/lw-mnt && ${share.sshfsCommand('/tmp/lw-mnt')}`);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('fuse: device not found');
    await share.stop();
    await lab.close();
  });

  test('traversal attempts are refused and nothing outside the folder is touched', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const { base, share: dir } = folders();
    await using share = await target.share(dir);
    const tmp = await remoteTmp(target);
    await target.exec(`printf 'PWNED\\n' > ${tmp}/evil.txt`);
    const outsideBefore = snapshot(base, dir);
    const insideBefore = snapshot(dir);
    const attempts: Array<[string, RegExp]> = [
      [`get ../secret.txt ${tmp}/got1`, /not found/],
      [`get /../secret.txt ${tmp}/got2`, /not found/],
      [`get out ${tmp}/got3`, /not found|denied/i],
      [`get outdir/inner.txt ${tmp}/got4`, /not found|denied/i],
      [`get /etc/passwd ${tmp}/got5`, /not found/],
      [`put ${tmp}/evil.txt out`, /denied|failure/i],
      [`put ${tmp}/evil.txt ../evil.txt`, /denied|failure/i],
      [`put ${tmp}/evil.txt outdir/evil.txt`, /denied|failure/i],
      [`put ${tmp}/evil.txt /tmp/evil.txt`, /no such file|failure/i],
      ['cd ..', /outside the shared folder/],
      ['cd outdir', /outside the shared folder|denied/i],
      ['rename hello.txt ../moved.txt', /denied/i],
      ['rename hello.txt outdir/moved.txt', /denied/i],
      ['ln -s ../secret.txt evil-link', /denied/i],
      ['ln -s outdir/inner.txt evil-link2', /denied/i],
      ['chmod 777 out', /denied/i],
      ['mkdir ../made', /denied/i],
      ['rmdir ..', /denied/i],
    ];
    for (const [command, refusal] of attempts) {
      const r = await sftp(target, share, [command]);
      expect(r.exitCode, command).toBe(1);
      expect(r.stderr, command).toMatch(refusal);
    }
    // Listing through the outward link shows the link, never what is behind it.
    for (const command of ['ls outdir', 'ls -l outdir/', 'ls outdir/*', 'ls -la outdir/.']) {
      const r = await sftp(target, share, [command]);
      expect(`${r.output}${r.stderr}`, command).not.toContain('inner.txt');
    }
    // Nothing was fetched, nothing outside changed, nothing inside either.
    expect((await target.exec(`ls ${tmp}`)).output).toBe('evil.txt\n');
    expect(snapshot(base, dir)).toEqual(outsideBefore);
    expect(snapshot(dir)).toEqual(insideBefore);
    // Removing the outward link removes the link only.
    expect((await sftp(target, share, ['rm out'])).exitCode).toBe(0);
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
    expect(readFileSync(path.join(base, 'secret.txt'), 'utf8')).toBe('RUNNER SECRET\n');
    await share.stop();
    await lab.close();
  });

  test('a read-only share refuses every write and still serves reads', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const { share: dir } = folders();
    await using share = await target.share(dir, { readOnly: true });
    const tmp = await remoteTmp(target);
    await target.exec(`printf 'new\\n' > ${tmp}/new.txt`);
    const before = snapshot(dir);
    const read = await sftp(target, share, [`get sub/deep.txt ${tmp}/deep.txt`, 'ls']);
    expect(read.exitCode).toBe(0);
    expect((await target.exec(`cat ${tmp}/deep.txt`)).output).toBe('deep\n');
    for (const command of [
      `put ${tmp}/new.txt new.txt`,
      `put ${tmp}/new.txt hello.txt`,
      'mkdir d',
      'rmdir sub',
      'rm hello.txt',
      'rename hello.txt h2.txt',
      'chmod 600 hello.txt',
      'ln -s hello.txt l',
    ]) {
      const r = await sftp(target, share, [command]);
      expect(r.exitCode, command).toBe(1);
      expect(r.stderr, command).toMatch(/denied|read-only/i);
    }
    expect(snapshot(dir)).toEqual(before);
    await share.stop();
    await lab.close();
  });

  test('a wrong key, a password and anything but SFTP are refused', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const { share: dir } = folders();
    await using share = await target.share(dir);
    const tmp = await remoteTmp(target);
    await target.exec(`ssh-keygen -q -t ed25519 -N '' -f ${tmp}/wrong`);
    const common = `-F /dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile=${share.knownHostsFile} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
    const wrongKey = await target.exec(`ssh ${common} -i ${tmp}/wrong -p ${share.remotePort} share@127.0.0.1 true`);
    expect(wrongKey.exitCode).toBe(255);
    expect(wrongKey.stderr).toContain('Permission denied (publickey)');
    const wrongSftp = await target.exec(share.sftpCommand(['-b', '-']).replace(share.keyFile, `${tmp}/wrong`), { stdin: 'ls\n' });
    expect(wrongSftp.exitCode).not.toBe(0);
    expect(wrongSftp.stderr).toContain('Permission denied (publickey)');
    const password = await target.exec(`ssh ${common} -o PreferredAuthentications=password,keyboard-interactive -p ${share.remotePort} share@127.0.0.1 true`);
    expect(password.stderr).toContain('Permission denied (publickey)');
    // The right key, but a command instead of the sftp subsystem.
    const exec = await target.exec(`ssh ${common} -i ${share.keyFile} -p ${share.remotePort} share@127.0.0.1 id`);
    expect(exec.exitCode).not.toBe(0);
    expect(exec.output).toBe('');
    expect(exec.stderr).toMatch(/exec request failed/);
    await share.stop();
    await lab.close();
  });

  test('stop closes the port and removes the key files; it is idempotent', async ({ sharedLab }) => {
    const { lab, events, target } = labOf(sharedLab);
    const { share: dir } = folders();
    const share = await target.share(dir);
    const { remotePort, remoteDir } = share;
    expect(await listening(target, remotePort)).toBe(true);
    const files = await target.exec(`stat -c '%a %n' ${remoteDir} ${share.keyFile} ${share.knownHostsFile}`);
    expect(files.output).toBe(`700 ${remoteDir}\n600 ${share.keyFile}\n600 ${share.knownHostsFile}\n`);
    expect((await target.exec(`cat ${share.knownHostsFile}`)).output).toBe(`[127.0.0.1]:${remotePort} ${share.hostPublicKey}\n`);
    await share.stop();
    await share.stop();
    expect(await listening(target, remotePort)).toBe(false);
    expect((await target.exec(`test -e ${remoteDir} && echo present || echo gone`)).output).toBe('gone\n');
    const after = await sftp(target, share, ['ls']);
    expect(after.exitCode).not.toBe(0);
    expect(events.filter((e) => e.type === 'connection' && e.protocol === 'share').map((e) => (e as { event: string }).event)).toEqual(['connected', 'closed']);
    await lab.close();
  });

  test('pause closes open connections and refuses new ones; resume serves again', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const { share: dir } = folders();
    await using share = await target.share(dir);
    // A session that stays open: the second command comes after a pause.
    const open = target.exec(`{ echo ls; sleep 3; echo ls; } | ${share.sftpCommand(['-b', '-'])}`, { timeout: 30_000 });
    await expect.poll(() => share.connections, { timeout: 10_000 }).toBe(1);
    share.pause();
    expect(share.paused).toBe(true);
    const cut = await open;
    expect(cut.exitCode).not.toBe(0);
    expect(share.connections).toBe(0);
    const refused = await sftp(target, share, ['ls']);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/Connection closed|closed by remote host|reset/i);
    expect(await listening(target, share.remotePort)).toBe(true);
    share.resume();
    const again = await sftp(target, share, ['ls']);
    expect(again.exitCode).toBe(0);
    expect(again.output).toContain('hello.txt');
    await share.stop();
    await lab.close();
  });

  test('two shares at once on one host, each confined to its own folder; host.close() stops both', async ({ sharedLab }) => {
    const { lab, target } = labOf(sharedLab);
    const one = folders();
    const two = folders();
    writeFileSync(path.join(two.share, 'only-in-two.txt'), 'two\n');
    const a = await target.share(one.share);
    const b = await target.share(two.share, { readOnly: true });
    expect(a.remotePort).not.toBe(b.remotePort);
    const [ra, rb] = await Promise.all([sftp(target, a, ['ls']), sftp(target, b, ['ls'])]);
    expect(ra.output).not.toContain('only-in-two.txt');
    expect(rb.output).toContain('only-in-two.txt');
    // One share's key does not open the other.
    const cross = await target.exec(b.sftpCommand(['-b', '-']).replace(b.keyFile, a.keyFile), { stdin: 'ls\n' });
    expect(cross.stderr).toContain('Permission denied (publickey)');
    await lab.close();
    const device = sharedLab.host('target');
    const check = await device.exec(`ss -Htln; ls -d ${a.remoteDir} ${b.remoteDir} 2>&1 || true`);
    expect(check.stdout).not.toMatch(new RegExp(`:(${a.remotePort}|${b.remotePort})\\b`));
    expect(check.stdout).toContain('No such file or directory');
    expect(a.stopped && b.stopped).toBe(true);
  });
});

test.describe('share through a hop', () => {
  let started: StartedLab | undefined;
  test.beforeAll(async () => {
    started = await privateLab({ roles: ['bastion', 'inner'] });
  });
  test.afterAll(async () => {
    await started?.stop();
  });

  test('the inner host reaches the share over its own connection, which goes through the bastion', async () => {
    const lab = new Lab(defineLab(labInput(started!)));
    const inner = lab.remote('inner');
    const { share: dir } = folders();
    const share = await inner.share(dir);
    const tmp = await remoteTmp(inner);
    expect((await inner.exec('hostname')).output).toBe('inner\n');
    await inner.exec(`printf 'from inner\\n' > ${tmp}/up.txt`);
    const r = await sftp(inner, share, [`get hello.txt ${tmp}/hello.txt`, `put ${tmp}/up.txt up.txt`]);
    expect(r.exitCode).toBe(0);
    expect((await inner.exec(`cat ${tmp}/hello.txt`)).output).toBe('hello from the runner\n');
    expect(readFileSync(path.join(dir, 'up.txt'), 'utf8')).toBe('from inner\n');
    // The bastion does not see the share: it listens on inner's loopback only.
    expect(await listening(lab.remote('bastion'), share.remotePort)).toBe(false);
    await share.stop();
    expect(await listening(inner, share.remotePort)).toBe(false);
    expect((await inner.exec(`test -e ${share.remoteDir} && echo present || echo gone`)).output).toBe('gone\n');
    await lab.close();
  });

  test("after the device's sshd restarts, the share is offered again on the same port", async () => {
    const lab = new Lab(defineLab(labInput(started!)));
    const inner = lab.remote('inner');
    const { share: dir } = folders();
    await using share = await inner.share(dir);
    expect((await sftp(inner, share, ['ls'])).exitCode).toBe(0);
    await started!.host('inner').restartSshd();
    // The next command reconnects; the forward is requested again on the new connection.
    await expect.poll(async () => (await sftp(inner, share, ['ls'])).output, { timeout: 30_000 }).toContain('hello.txt');
    await share.stop();
    expect(await listening(inner, share.remotePort)).toBe(false);
    await lab.close();
  });
});

test.describe('sshfs with FUSE', () => {
  // The container gets the runner's /dev/fuse (startLab loads the module if it must). A
  // developer's machine without FUSE skips; under CI the lab's own error fails the test.
  test.skip(!process.env.CI && !existsSync('/dev/fuse'), 'the runner has no /dev/fuse to pass into the container');
  let started: StartedLab | undefined;
  test.beforeAll(async () => {
    started = await privateLab({ roles: ['target'], roleOptions: { target: { fuse: true } } });
  });
  test.afterAll(async () => {
    await started?.stop();
  });

  test('the device mounts the share with sshfs, reads and writes through the mount', async () => {
    const { lab, target } = labOf(started!);
    const { base, share: dir } = folders();
    await using share = await target.share(dir);
    const mount = `${await remoteTmp(target)}/mnt`;
    const commands = await share.clientCommands(mount);
    expect(commands.unavailable).toEqual({});
    expect(commands.sshfs).toBe(share.sshfsCommand(mount));
    const outsideBefore = snapshot(base, dir);
    const r = await target.exec(
      [
        `mkdir -p ${mount}`,
        commands.sshfs!,
        `cat ${mount}/hello.txt`,
        `echo 'written through fuse' > ${mount}/sub/fuse.txt`,
        `ls ${mount}`,
        `cat ${mount}/out 2>&1 || echo refused`,
        `fusermount -u ${mount}`,
      ].join(' && '),
      { timeout: 30_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.output).toBe(`hello from the runner\nhello.txt\nout\noutdir\nsub\ncat: ${mount}/out: Permission denied\nrefused\n`);
    expect(readFileSync(path.join(dir, 'sub', 'fuse.txt'), 'utf8')).toBe('written through fuse\n');
    expect(snapshot(base, dir)).toEqual(outsideBefore);
    await share.stop();
    await lab.close();
  });
});
