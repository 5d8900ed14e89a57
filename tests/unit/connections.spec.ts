/**
 * The connection layer against an in-process SSH server and through the connection
 * factory seam: one connect for concurrent callers, retries for transient failures only,
 * reconnect after a loss, the executor's retry and its channel budget.
 */
import { expect, test } from '@playwright/test';

import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import { type ConnectionFactory, ConnectionManager } from '../../src/transport/connectionManager.js';
import { directPath } from '../../src/transport/network.js';
import { connectSsh } from '../../src/transport/sshConnect.js';
import { ConnectionError, TimeoutError } from '../../src/util/errors.js';
import { fakeLab, type FakeSshServer, startFakeSsh } from '../helpers/fakeSshServer.js';

let server: FakeSshServer;
test.beforeEach(async () => {
  server = await startFakeSsh({ maxSessions: 2 });
});
test.afterEach(async () => {
  await server.close();
});

/** A factory that fails `failures` times with `kind`, then connects for real; counts its calls. */
function flakyFactory(failures: number, kind: 'refused' | 'auth') {
  const calls = { count: 0 };
  const factory: ConnectionFactory = {
    ssh: async (target, path) => {
      calls.count++;
      if (calls.count <= failures) throw new ConnectionError(kind, `injected ${kind} failure ${calls.count}`, { host: target.config.name, protocol: 'ssh' });
      return connectSsh(target, path);
    },
  };
  return { factory, calls };
}

test('concurrent first uses share one connect', async () => {
  const { factory, calls } = flakyFactory(0, 'refused');
  const manager = new ConnectionManager(fakeLab(server).hosts.fake!, { path: directPath, factory });
  const connections = await Promise.all(Array.from({ length: 10 }, () => manager.ssh()));
  expect(new Set(connections).size).toBe(1);
  expect(calls.count).toBe(1);
  expect(server.connections).toBe(1);
  await manager.close();
});

test('transient failures are retried with backoff and reported; refused credentials are tried once', async () => {
  const events: string[] = [];
  const transient = flakyFactory(2, 'refused');
  const config = fakeLab(server, { connectAttempts: 3, connectBackoff: 10, connectBackoffMax: 20 }).hosts.fake!;
  const manager = new ConnectionManager(config, { path: directPath, factory: transient.factory, onEvent: (event) => events.push(event.event) });
  await manager.ssh();
  expect(transient.calls.count).toBe(3);
  expect(events).toEqual(['retry', 'retry', 'connected']);
  await manager.close();

  const auth = flakyFactory(5, 'auth');
  const refused = new ConnectionManager(config, { path: directPath, factory: auth.factory });
  await expect(refused.ssh()).rejects.toThrow(/injected auth failure 1/);
  expect(auth.calls.count).toBe(1);
});

test('a dropped connection is noticed and reopened on the next use', async () => {
  const manager = new ConnectionManager(fakeLab(server).hosts.fake!, { path: directPath });
  const first = await manager.ssh();
  server.dropAll();
  await expect.poll(() => first.alive).toBe(false);
  const second = await manager.ssh();
  expect(second).not.toBe(first);
  expect(second.generation).toBe(first.generation + 1);
  await manager.close();
});

test('the executor keeps 30 concurrent commands within MaxSessions (probed) on one connection', async () => {
  const lab = new Lab(fakeLab(server));
  const fake = lab.remote('fake');
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => fake.exec(`echo ${i}`)));
  results.forEach((result, i) => expect(result.output).toBe(`${i}\n`));
  expect(server.connections).toBe(1);
  expect(server.peakSessions).toBe(2);
  await lab.close();
});

test('a command whose connection dropped under it is retried once on a new connection; a failed exit is never retried', async () => {
  const events: LabEvent[] = [];
  const lab = new Lab(fakeLab(server));
  lab.events.on((event) => events.push(event));
  const fake = lab.remote('fake');
  const retried = await fake.exec('drop-first');
  expect(retried.exitCode).toBe(0);
  expect(server.commands.filter((command) => command === 'drop-first')).toHaveLength(2);
  expect(server.connections).toBe(2);

  const failed = await fake.exec('exit 3');
  expect(failed.exitCode).toBe(3);
  expect(server.commands.filter((command) => command === 'exit 3')).toHaveLength(1);
  await lab.close();
});

test('waiting for a channel slot that does not come is a timeout, not a lost connection: nothing reconnects', async () => {
  const lab = new Lab(fakeLab(server, { maxSessions: 1 }));
  const fake = lab.remote('fake');
  const long = fake.exec('sleep 1.5');
  const waiting = await fake.exec('echo late', { timeout: 300 }).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(waiting).toBeInstanceOf(TimeoutError);
  expect((waiting as Error).message).toMatch(
    /^fake \(ssh\): no SSH session channel free for exec within \d+ ms: the server allows 1 per connection \(MaxSessions, configured\) and all are in use \(exec\)/,
  );
  expect((await long).exitCode).toBe(0);
  expect((await fake.exec('echo next')).output).toBe('next\n');
  expect(server.connections).toBe(1);
  await lab.close();
});

test('a server taking exec channels one at a time: commands that would wait behind running ones get side connections, at most four', async () => {
  const dropbear = await startFakeSsh({ maxSessions: 10, ident: 'dropbear_2022.83' });
  const events: LabEvent[] = [];
  const lab = new Lab(fakeLab(dropbear));
  lab.events.on((event) => events.push(event));
  try {
    const fake = lab.remote('fake');
    // Six commands of 1.5 s: one on the main connection and four on side connections at once; the sixth waits its turn.
    const long = Array.from({ length: 6 }, () => fake.exec('sleep 1.5'));
    await expect.poll(() => dropbear.connections, { timeout: 10_000 }).toBe(5);
    expect((await fake.exec('echo after the long ones', { timeout: 20_000 })).output).toBe('after the long ones\n');
    for (const result of await Promise.all(long)) expect(result.exitCode).toBe(0);
    expect(dropbear.connections).toBe(5);
    const connected = events.flatMap((e) => (e.type === 'connection' && e.event === 'connected' ? [e.detail ?? ''] : []));
    expect(connected[0]).toMatch(/exec channels one at a time \(dropbear_2022\.83/);
    expect(connected.slice(1)).toEqual([1, 2, 3, 4].map((n) => expect.stringMatching(new RegExp(`^side connection ${n} of 4`))));
  } finally {
    await lab.close();
    await dropbear.close();
  }
});
