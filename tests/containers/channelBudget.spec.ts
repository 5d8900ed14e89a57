/**
 * The channel budget on a server with MaxSessions 2: long-lived channels never starve the
 * others (an idle SFTP session gives its slot back), waiting for a slot is not a lost
 * connection, and a configured ssh.maxSessions above what the server allows is named.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { HostInput } from '../../src/config/schema.js';
import { expect, privateLab, type StartedLab, targetLab, test } from '../helpers/containerLab.js';

let started: StartedLab;
test.beforeAll(async () => {
  started = await privateLab({ roles: ['target'], roleOptions: { target: { maxSessions: 2 } } });
});
test.afterAll(async () => {
  await started?.stop();
});

const labOf = (overrides: Partial<HostInput> = {}) => targetLab(started, overrides);

function smallFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-budget-'));
  const file = path.join(dir, 'data.bin');
  writeFileSync(file, Buffer.alloc(64 * 1024, 7));
  return file;
}

test('a shell, an SFTP transfer done, then 20 concurrent exec: all complete on one connection, nothing reconnects', async () => {
  const { lab, events, target } = labOf();
  expect((await target.run('echo shell')).last.output).toBe('shell\n');
  await target.put(smallFile(), '/tmp/lw-budget.bin');
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => target.exec(`echo ${i}`, { timeout: 30_000 })));
  results.forEach((result, i) => expect(result.output).toBe(`${i}\n`));
  // The SFTP session is usable again afterwards (reopened on demand).
  await target.get('/tmp/lw-budget.bin', path.join(mkdtempSync(path.join(os.tmpdir(), 'lw-budget-get-')), 'back.bin'));
  const connectionEvents = events.filter((event) => event.type === 'connection').map((event) => (event.type === 'connection' ? event.event : ''));
  expect(connectionEvents).toEqual(['connected']);
  await lab.close();
});

test('SFTP waits for a slot held by shells and gets it when one closes; a wait that ends is named as MaxSessions, never as a missing SFTP server', async () => {
  const { lab, events, target } = labOf();
  await target.run('true');
  const session = await target.openSession('busy');
  // Both slots are taken by shells: the transfer waits, within its bound, and says why.
  const refused = await target.put(smallFile(), '/tmp/lw-budget-wait.bin', { timeout: 1_500 }).then(
    () => undefined,
    (error: Error) => error,
  );
  expect(refused?.message).toMatch(
    /^target \(ssh\): no SSH session channel free for sftp "sftp" within 1\.50 s: the server allows 2 per connection \(MaxSessions, probed\) and all are in use \(shell default, shell busy\)/,
  );
  expect(refused?.message).not.toMatch(/SFTP subsystem|Channel open failure/);
  const pending = target.put(smallFile(), '/tmp/lw-budget-wait.bin');
  await new Promise((resolve) => setTimeout(resolve, 300));
  await session.close();
  await expect(pending).resolves.toMatchObject({ bytes: 64 * 1024 });
  expect(events.filter((event) => event.type === 'connection' && event.event !== 'connected')).toEqual([]);
  await lab.close();
});

test('ssh.maxSessions configured above what the server allows is an error naming the setting and the fix', async () => {
  const { lab, target } = labOf({ ssh: { maxSessions: 5 } });
  await target.run('true');
  await target.openSession('a');
  const error = await target.openSession('b').then(
    () => undefined,
    (e: Error) => e,
  );
  expect(error?.message).toMatch(
    /^target \(ssh\): the server refused a session channel with 2 open, although ssh\.maxSessions is 5: .* Set ssh\.maxSessions to 2 \(the MaxSessions of the device's sshd_config\), or remove it/,
  );
  // The budget now knows better: exec waits for a slot instead of failing.
  const exec = target.exec('echo waited', { timeout: 20_000 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await target.closeSession('a');
  expect((await exec).output).toBe('waited\n');
  await lab.close();
});
