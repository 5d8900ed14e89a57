/**
 * Leases when things go wrong: a runner SIGKILLed while holding a device, an unreachable or
 * refusing store, the PostgreSQL server restarted or down mid-run, schema migrations.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import pg from 'pg';

import type { LabEvent } from '../../src/host/events.js';
import { openLeaseStore } from '../../src/lease/open.js';
import { POSTGRES_SCHEMA_VERSION } from '../../src/lease/postgresStore.js';
import { LeaseError } from '../../src/util/errors.js';
import { startInlineTest } from '../helpers/inlineTest.js';
import { expect, labWith, storeKinds, test, untilQueued } from '../helpers/leases.js';

const TTL = 2_000;

/** A port of 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function failure(promise: Promise<unknown>): Promise<LeaseError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(LeaseError);
  return error as LeaseError;
}

for (const kind of storeKinds) {
  test(`${kind} store: a runner killed with SIGKILL while holding a device frees it within the expiry bound`, async ({ newStore }) => {
    const store = await newStore(kind);
    mkdirSync(test.info().outputDir, { recursive: true });
    const heldFile = path.join(test.info().outputDir, 'held.json');
    const runner = await startInlineTest(
      {
        'lab.config.ts': `
          import { defineLab } from 'labwright';
          export default defineLab({ hosts: { 'dev-a': { address: '192.0.2.1', users: { lab: {} } } }, leases: { ttl: ${TTL} } });
        `,
        'a.spec.ts': `
          import { test, exclusive } from 'labwright';
          import { writeFileSync } from 'node:fs';
          test('holds dev-a until killed', exclusive('dev-a'), async ({ lab, host }) => {
            await host('dev-a');
            const mine = (await lab.leases.snapshot()).holders.find((h) => h.device === 'dev-a');
            writeFileSync(process.env.HELD_FILE, JSON.stringify({ token: mine.token, pid: process.pid, holderPid: mine.holder.pid }));
            await new Promise(() => {});
          });
        `,
      },
      { env: { LABWRIGHT_LEASES: store, HELD_FILE: heldFile }, detached: true, timeoutMs: 90_000 },
    );
    const lab = labWith(store, { 'dev-a': [] }, { ttl: TTL });
    try {
      await expect.poll(() => (existsSync(heldFile) ? readFileSync(heldFile, 'utf8') : ''), { timeout: 60_000 }).toContain('token');
      const dead = JSON.parse(readFileSync(heldFile, 'utf8')) as { token: number; pid: number; holderPid: number };
      expect(dead.holderPid).toBe(dead.pid);
      // The runner's worker holds dev-a: a request waits behind it.
      // Bound: the holder renews every TTL/3, so its lease ends at most one TTL after its death; the rest is slack for a loaded machine.
      const next = lab.lease('dev-a', { timeout: TTL + 2_000, purpose: 'after the kill' });
      await untilQueued(lab, 1);
      process.kill(-runner.child.pid!, 'SIGKILL');
      const held = await next;
      expect(held.token).toBeGreaterThan(dead.token);
      await held.release();
    } finally {
      await lab.close();
      try {
        process.kill(-runner.child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await runner.finished;
    }
  });
}

test('an unreachable PostgreSQL store is an error naming it, never a fall-back; its password is never shown', async () => {
  const port = await closedPort();
  const lab = labWith(`postgres://lab:Sup3r-Secret-pw@127.0.0.1:${port}/leases`);
  try {
    const error = await failure(lab.lease('local'));
    expect(error.kind).toBe('unreachable');
    expect(error.message).toContain(`PostgreSQL store postgres://lab@127.0.0.1:${port}/leases (set by leases.store in the lab config) is unreachable`);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('never falls back to local locks');
    expect(error.message).not.toContain('Sup3r');
    // And nothing was leased anywhere: the next attempt fails the same way.
    expect((await failure(lab.lease('local'))).kind).toBe('unreachable');
  } finally {
    await lab.close();
  }
});

test('a PostgreSQL store refusing the password says so, without the password', async ({ postgres }) => {
  const server = await postgres();
  const lab = labWith(`postgres://${server.user}:Wr0ng-password@127.0.0.1:${server.port}/postgres`);
  try {
    const error = await failure(lab.lease('local'));
    expect(error.kind).toBe('store');
    expect(error.message).toContain('password authentication failed');
    expect(error.message).toContain('Check the user and password in leases.store in the lab config');
    expect(error.message).not.toContain('Wr0ng');
  } finally {
    await lab.close();
  }
});

test('an embedded store in a directory that cannot be made is an error naming it', async () => {
  mkdirSync(test.info().outputDir, { recursive: true });
  const file = path.join(test.info().outputDir, 'a-file');
  writeFileSync(file, '');
  const lab = labWith(path.join(file, 'leases'));
  try {
    const error = await failure(lab.lease('local'));
    expect(error.kind).toBe('unreachable');
    expect(error.message).toContain(`embedded store ${path.join(file, 'leases')}: cannot create or use the directory`);
  } finally {
    await lab.close();
  }
});

test('PostgreSQL restarted mid-run: holders and waiters resume within the TTL; an outage longer than the TTL fails the holder clearly', async ({
  postgres,
}) => {
  const server = await postgres();
  const store = await server.createDatabase();
  const ttl = 4_000;
  const holderLab = labWith(store, {}, { ttl });
  const waiterLab = labWith(store, {}, { ttl });
  const events: LabEvent[] = [];
  holderLab.events.on((event) => events.push(event));
  waiterLab.events.on((event) => events.push(event));
  const seen = (kind: string) => events.some((event) => event.type === 'lease' && event.event === kind);
  try {
    const held = await holderLab.lease('local', { purpose: 'holder' });
    const waiting = waiterLab.lease('local', { purpose: 'waiter', timeout: 60_000 });
    await untilQueued(holderLab, 1);

    // Down until a heartbeat has failed, then up again: the holder keeps its device.
    await server.stop();
    await expect.poll(() => seen('renew-failed'), { timeout: ttl }).toBe(true);
    await server.start();
    await expect.poll(() => seen('renewed'), { timeout: ttl }).toBe(true);
    expect(held.lost).toBeUndefined();
    expect((await held.host.run('echo still mine')).ok).toBe(true);

    // The waiter kept its place through the restart and gets the device when it is released.
    await held.release();
    const next = await waiting;
    expect(next.token).toBeGreaterThan(held.token);

    // Down for longer than the TTL: the holder stops trusting its lease, and says why.
    await server.stop();
    await expect.poll(() => next.lost, { timeout: ttl + 2_000 }).toBeDefined();
    const error = await failure(next.host.run('echo too late'));
    expect(error.kind).toBe('lost');
    expect(error.message).toContain(`no renewal reached the PostgreSQL store postgres://${server.user}@127.0.0.1:${server.port}/`);
    expect(events.filter((event) => event.type === 'lease' && event.event === 'lost')).toHaveLength(1);
  } finally {
    await server.start().catch(() => {});
    await holderLab.close();
    await waiterLab.close();
  }
});

test('PostgreSQL connections killed under the store (pg_terminate_backend) are replaced: operations retry, nothing crashes', async ({ postgres }) => {
  const server = await postgres();
  const store = await server.createDatabase();
  const lab = labWith(store, { a: [], b: [] }, { ttl: 3_000 });
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  try {
    const held = await lab.lease('a');
    let killing = true;
    const work = (async () => {
      let rounds = 0;
      while (killing) {
        await (await lab.lease('b', { timeout: 20_000 })).release();
        rounds++;
      }
      return rounds;
    })();
    for (let round = 0; round < 40; round++) {
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'labwright leases'`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    killing = false;
    expect(await work).toBeGreaterThan(0);
    expect(held.lost).toBeUndefined();
    await held.release();
    expect((await lab.leases.snapshot()).holders).toEqual([]);
  } finally {
    await admin.end();
    await lab.close();
  }
});

test('PostgreSQL tables are created once when runners start together; a schema from a newer labwright is refused', async ({ postgres }) => {
  const server = await postgres();
  const url = await server.createDatabase();
  const config = labWith(url).config.leases;
  const stores = await Promise.all(Array.from({ length: 8 }, () => openLeaseStore(config)));
  await Promise.all(stores.map((store) => store.close()));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version = await client.query<{ value: string }>(`SELECT value FROM labwright_lease_meta WHERE key = 'schema_version'`);
    expect(Number(version.rows[0]!.value)).toBe(POSTGRES_SCHEMA_VERSION);
    await client.query(`UPDATE labwright_lease_meta SET value = 99 WHERE key = 'schema_version'`);
  } finally {
    await client.end();
  }
  const error = await failure(openLeaseStore(config));
  expect(error.kind).toBe('store');
  expect(error.message).toContain('has lease tables of schema version 99, made by a newer labwright');
});
