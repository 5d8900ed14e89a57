/** A telnet-only device (no sshd) through the host API: shells, pooled exec, FTP and nc transfers, errors. */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import { Lab } from '../../src/host/lab.js';
import { expect, labInput, type StartedLab, test } from '../helpers/containerLab.js';

function labOf(started: StartedLab, overrides: Record<string, Partial<HostInput>> = {}) {
  const lab = new Lab(defineLab(labInput(started, overrides)));
  return { lab, telnet: lab.remote('telnet') };
}

test('run keeps state, expects answer prompts, timeouts recover, named sessions run in parallel', async ({ sharedLab }) => {
  const { lab, telnet } = labOf(sharedLab);
  expect((await telnet.run(['cd /var', 'pwd'])).last.output).toBe('/var\n');
  const prompt = await telnet.run('printf "Proceed? "; read a; printf "Sure? "; read b; echo "$a/$b"', { expects: [[/\? $/, 'y']] });
  expect(prompt.only.output).toContain('y/y');
  for (let i = 0; i < 3; i++) expect((await telnet.run('sleep 30', { timeout: 300 })).only.timedOut).toBe(true);
  expect((await telnet.run('pwd')).only.output).toBe('/var\n');
  const sessions = await Promise.all(['a', 'b'].map((name) => telnet.openSession(name)));
  await telnet.exec('rm -f /tmp/lw-par-*');
  // Each waits for the other's file: only possible when both run at once.
  const both = await Promise.all(
    sessions.map((s, i) => s.run(`touch /tmp/lw-par-${i}; while [ $(ls /tmp/lw-par-* | wc -l) -lt 2 ]; do sleep 0.05; done; echo ${i}`, { timeout: 10_000 })),
  );
  expect(both.map((r) => r.only.output)).toEqual(['0\n', '1\n']);
  await lab.close();
});

test('telnet shells have the default SIGPIPE: a pipeline ending early is quiet', async ({ sharedLab }) => {
  const { lab, telnet } = labOf(sharedLab);
  const r = await telnet.run('yes | head -n 2');
  expect(r.only.output).toBe('y\ny\n');
  await lab.close();
});

test('every byte value reads back exactly over telnet', async ({ sharedLab }) => {
  await sharedLab.host('telnetOnly').exec(`python3 -c "open('/tmp/allbytes.bin','wb').write(bytes(range(256))*4)"`);
  const { lab, telnet } = labOf(sharedLab);
  const r = await telnet.run('cat /tmp/allbytes.bin');
  expect(r.only.outputBytes.equals(Buffer.concat(Array.from({ length: 4 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i)))))).toBe(true);
  await lab.close();
});

test('exec on a pool of logged-in shells: stderr apart, env, stdin, exit codes, state not leaking', async ({ sharedLab }) => {
  const { lab, telnet } = labOf(sharedLab);
  const r = await telnet.exec('cd /; echo "$GREETING"; cat; echo warn >&2; exit 5', { env: { GREETING: "it's me" }, stdin: 'piped\n' });
  expect([r.output, r.stderr, r.exitCode]).toEqual(["it's me\npiped\n", 'warn\n', 5]);
  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => telnet.exec(`pwd; echo ${i}`)));
  many.forEach((m, i) => expect(m.output).toBe(`/home/lab\n${i}\n`));
  await lab.close();
});

test('nc put and get in both directions, verified, no listener left behind', async ({ sharedLab }) => {
  const { lab, telnet } = labOf(sharedLab);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-nc-'));
  mkdirSync(path.join(dir, 'tree/sub'), { recursive: true });
  writeFileSync(path.join(dir, 'tree/sub/blob.bin'), Buffer.from(Array.from({ length: 2_500_000 }, (_, i) => (i * 31) % 256)));
  writeFileSync(path.join(dir, 'tree/empty'), '');
  writeFileSync(path.join(dir, 'single.bin'), Buffer.alloc(777_777, 0xff));
  const progress: number[] = [];
  const file = await telnet.put(path.join(dir, 'single.bin'), '/tmp/nc-single.bin', {
    method: 'nc',
    verify: 'sha256',
    onProgress: (done) => progress.push(done),
  });
  expect(file).toMatchObject({ method: 'nc', bytes: 777_777, verified: 'sha256' });
  expect(progress[progress.length - 1]).toBe(777_777);
  const back = await telnet.get('/tmp/nc-single.bin', path.join(dir, 'single.back'), { method: 'nc', verify: 'sha256' });
  expect(back.bytes).toBe(777_777);
  expect(readFileSync(path.join(dir, 'single.back'))).toEqual(readFileSync(path.join(dir, 'single.bin')));
  await telnet.put(path.join(dir, 'tree'), '/tmp/nc-tree', { method: 'nc', verify: 'sha256' });
  const treeBack = await telnet.get('/tmp/nc-tree', path.join(dir, 'tree.back'), { method: 'nc', verify: 'size' });
  expect(treeBack.files).toBe(2);
  expect(readFileSync(path.join(dir, 'tree.back/sub/blob.bin'))).toEqual(readFileSync(path.join(dir, 'tree/sub/blob.bin')));
  const device = sharedLab.host('telnetOnly');
  // No socket is listening for nc, and neither nc nor its watchdog is still running.
  expect((await device.exec(`ss -Htlnp | grep -c '"nc"' || true`)).stdout.trim()).toBe('0');
  expect((await device.exec("ps -eo args | grep -cE '^(nc -l|sleep 120)' || true")).stdout.trim()).toBe('0');
  await lab.close();
});

test('FTP is the default transfer of a telnet host', async ({ sharedLab }) => {
  const { lab, telnet } = labOf(sharedLab);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-tftp-'));
  writeFileSync(path.join(dir, 'f.txt'), 'over ftp\n');
  const r = await telnet.put(path.join(dir, 'f.txt'), '/tmp/lw-tftp.txt');
  expect(r.method).toBe('ftp');
  expect((await telnet.exec('cat /tmp/lw-tftp.txt')).output).toBe('over ftp\n');
  await lab.close();
});

test('a wrong telnet password, a refused FTP login and a missing nc are each a clear error', async ({ sharedLab }) => {
  const user = sharedLab.credentials.user.username;
  const wrong = labOf(sharedLab, { telnet: { users: { [user]: { password: 'definitely-wrong' } }, telnet: { loginTimeout: 15_000 } } });
  await expect(wrong.telnet.run('true')).rejects.toThrow(
    /^telnet \(telnet\): login as "lab" on 127\.0\.0\.1:\d+ was refused: the device answered "Login incorrect"\./,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-terr-'));
  writeFileSync(path.join(dir, 'f'), 'x');
  await expect(wrong.telnet.put(path.join(dir, 'f'), '/tmp/f', { method: 'ftp' })).rejects.toThrow(/telnet \(ftp\): .*lab.*530/);
  await wrong.lab.close();

  const { privateLab } = await import('../helpers/containerLab.js');
  const own = await privateLab({ roles: ['telnetOnly'] });
  try {
    await own.host('telnetOnly').removeNc();
    const { lab, telnet } = labOf(own);
    await expect(telnet.put(path.join(dir, 'f'), '/tmp/f', { method: 'nc' })).rejects.toThrow(
      /^telnet \(nc\): put of .*\/f to \/tmp\/f failed: "nc" is not installed on the device\. Install netcat/,
    );
    await lab.close();
  } finally {
    await own.stop();
  }
});
