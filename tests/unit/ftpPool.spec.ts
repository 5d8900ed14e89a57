/** The connection pool behind FTP transfers: bounded size, queueing, replacement, bounded waits. */
import { expect, test } from '@playwright/test';

import { Pool, type PoolHooks } from '../../src/transfer/ftp/pool.js';

interface Fake {
  id: number;
  alive: boolean;
  destroyed?: 'closed' | 'lost';
}

function pool(size: number, waitTimeout = 5_000, overrides: Partial<PoolHooks<Fake>> = {}) {
  let next = 1;
  const made: Fake[] = [];
  const hooks: PoolHooks<Fake> = {
    create: async () => {
      const fake = { id: next++, alive: true };
      made.push(fake);
      return fake;
    },
    validate: async (fake) => fake.alive,
    destroy: async (fake, reason) => void (fake.destroyed = reason),
    waitTimeoutError: (ms, n) => new Error(`waited ${ms} ms for ${n}`),
    closedError: () => new Error('pool closed'),
    ...overrides,
  };
  return { pool: new Pool(size, waitTimeout, hooks), made };
}

const never = () => false;

/** A promise and its resolver, to hold a resource for as long as a test wants. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('never holds more than its size and serves waiters in order', async () => {
  const { pool: p, made } = pool(2);
  const order: number[] = [];
  const gates = Array.from({ length: 5 }, gate);
  const runs = gates.map((g, i) =>
    p.use(async (fake) => {
      order.push(i);
      await g.promise;
      return fake.id;
    }, never),
  );
  await expect.poll(() => p.stats.busy).toBe(2);
  expect(p.stats).toMatchObject({ waiting: 3, open: 2 });
  for (const g of gates) g.open();
  const ids = await Promise.all(runs);
  expect(order).toEqual([0, 1, 2, 3, 4]);
  expect(made).toHaveLength(2);
  expect(new Set(ids)).toEqual(new Set([1, 2]));
  expect(p.stats).toMatchObject({ busy: 0, idle: 2, waiting: 0, peakBusy: 2, created: 2 });
});

test('replaces dead and broken resources', async () => {
  const { pool: p, made } = pool(1);
  await p.use(async () => {}, never);
  made[0]!.alive = false; // died while idle
  expect(await p.use(async (fake) => fake.id, never)).toBe(2);
  expect(made[0]!.destroyed).toBe('lost');
  await expect(
    p.use(
      async () => Promise.reject(new Error('socket hang up')),
      () => true,
    ),
  ).rejects.toThrow('socket hang up');
  expect(made[1]!.destroyed).toBe('lost');
  expect(await p.use(async (fake) => fake.id, never)).toBe(3);
});

test('a waiter fails after the bound when nothing is freed, and the bound restarts on every release', async () => {
  const { pool: p } = pool(1, 500);
  const held = gate();
  const holder = p.use(() => held.promise, never);
  await expect(p.use(async () => {}, never)).rejects.toThrow('waited 500 ms for 1');
  held.open();
  await holder;

  // Each release re-arms the waiters: a queue moving in steps shorter than the bound never fails.
  const steps = Array.from({ length: 8 }, () => p.use(() => new Promise<void>((resolve) => setTimeout(resolve, 100)), never));
  await expect(Promise.all(steps)).resolves.toHaveLength(8);
});

test('a failing create frees its slot for the next caller', async () => {
  let attempts = 0;
  const { pool: p } = pool(1, 5_000, {
    create: async () => {
      attempts++;
      if (attempts === 1) throw new Error('connect refused');
      return { id: attempts, alive: true };
    },
  });
  const [first, second] = await Promise.allSettled([p.use(async (f) => f.id, never), p.use(async (f) => f.id, never)]);
  expect(first).toMatchObject({ status: 'rejected', reason: new Error('connect refused') });
  expect(second).toMatchObject({ status: 'fulfilled', value: 2 });
});

test('close destroys everything and fails waiters and later callers', async () => {
  const { pool: p, made } = pool(1);
  const held = gate();
  const holder = p.use(() => held.promise, never);
  const waiter = p.use(async () => {}, never);
  await expect.poll(() => p.stats.waiting).toBe(1);
  await p.close();
  await expect(waiter).rejects.toThrow('pool closed');
  expect(made[0]!.destroyed).toBe('closed');
  held.open();
  await holder;
  await expect(p.use(async () => {}, never)).rejects.toThrow('pool closed');
});

test('a fatal create failure fails the queued callers too, without more attempts', async () => {
  let attempts = 0;
  const { pool: p } = pool(1, 5_000, {
    create: async () => {
      attempts++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new Error('530 Login incorrect.');
    },
    failsWaiters: () => true,
  });
  const results = await Promise.allSettled(Array.from({ length: 4 }, () => p.use(async () => {}, never)));
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
  expect(attempts).toBe(1);
});
