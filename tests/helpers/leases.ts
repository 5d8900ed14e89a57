/**
 * Helpers for the lease tests: a throwaway PostgreSQL server per worker (started on first
 * use, removed at the end), a fresh store of either kind per test, and labs of placeholder
 * devices (hosts with tags that are leased, never connected to).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect, test as base } from '@playwright/test';

import { type StartedPostgres, startPostgres } from '../../fixtures/lab/postgres.js';
import { defineLab } from '../../src/config/defineLab.js';
import { Lab } from '../../src/host/lab.js';

export type StoreKind = 'postgres' | 'embedded';
export const storeKinds: readonly StoreKind[] = ['postgres', 'embedded'];

interface WorkerFixtures {
  /** This worker's PostgreSQL server, started on the first call. */
  postgres: () => Promise<StartedPostgres>;
}

interface TestFixtures {
  /** A fresh, empty store of `kind`: a new database, or a new lock directory. Its URL or path. */
  newStore: (kind: StoreKind) => Promise<string>;
}

export const test = base.extend<TestFixtures, WorkerFixtures>({
  postgres: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
    async ({}, use) => {
      let started: Promise<StartedPostgres> | undefined;
      await use(() => (started ??= startPostgres()));
      await (await started?.catch(() => undefined))?.destroy();
    },
    { scope: 'worker', timeout: 120_000 },
  ],
  newStore: async ({ postgres }, use) => {
    const directories: string[] = [];
    await use(async (kind) => {
      if (kind === 'postgres') return (await postgres()).createDatabase();
      await mkdir(path.join(os.tmpdir(), 'labwright-test-leases'), { recursive: true });
      directories.push(await mkdtemp(path.join(os.tmpdir(), 'labwright-test-leases', 'store-')));
      return directories.at(-1)!;
    });
    await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
  },
});

export { expect };

/**
 * A lab of placeholder devices (name → tags) sharing `store`; `local` is real. Nothing
 * connects to the placeholders: the tests lease them.
 */
export function labWith(store: string, devices: Record<string, string[]> = {}, leases: { ttl?: number; waitTimeout?: number } = {}): Lab {
  const hosts = Object.fromEntries(Object.entries(devices).map(([name, tags]) => [name, { address: '192.0.2.1', users: { lab: {} }, tags }]));
  const saved = process.env.LABWRIGHT_LEASES;
  delete process.env.LABWRIGHT_LEASES;
  try {
    return new Lab(defineLab({ hosts, leases: { store, ttl: 2_000, ...leases } }));
  } finally {
    if (saved !== undefined) process.env.LABWRIGHT_LEASES = saved;
  }
}

/** Waits (bounded) until the store's queue has `count` requests. */
export async function untilQueued(lab: Lab, count: number): Promise<void> {
  await expect.poll(async () => (await lab.leases.snapshot()).waiters.length, { timeout: 20_000, intervals: [20, 50, 100] }).toBe(count);
}
