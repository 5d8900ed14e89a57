/**
 * Lease fixtures (wired into `test` by fixtures.ts): the `lease()` fixture, a project's
 * device pool (`use: { pool: { tags: [...] } }`, so `dut` is whichever matching host is free),
 * and `exclusive()` backed by leases, so it holds across `--shard` runners and machines that
 * share a store. Waiting shows up as a `lease` step and in the transcripts.
 */
import type { TestInfo } from '@playwright/test';

import type { Host } from '../host/host.js';
import type { Lab } from '../host/lab.js';
import type { HostLease, LeaseOptions } from '../host/leases.js';
import type { LeaseSelector } from '../lease/selector.js';
import { LabwrightError } from '../util/errors.js';

/** How long a lease is held. */
export type LeaseScope = 'test' | 'worker';

/** The `pool` option: where a project's `dut` comes from. */
export interface PoolOption {
  /** Any free host carrying every one of these tags. */
  tags?: string[];
  /** Or one host by name. */
  host?: string;
  /**
   * `test` (default): leased for each test. `worker`: held by the worker for all its tests
   * (a flashing suite); set in a describe block's `test.use`, it holds for that block.
   */
  scope?: LeaseScope;
  /** Higher is served first. Default 0. */
  priority?: number;
  /** Bound (ms) on waiting; default the lab's `leases.waitTimeout`, within the test's timeout. */
  timeout?: number;
}

/** Options of the project that concern leases. */
export interface LeaseProjectOptions {
  /** Take `dut` from a pool of hosts (by tags) or lease a named one; default: `defaultHost`, not leased. */
  pool: PoolOption | undefined;
}

/** Options of the `lease()` fixture. */
export interface LeaseFixtureOptions extends Omit<LeaseOptions, 'purpose'> {
  /** `test` (default): released when the test ends; `worker`: when the worker ends, and the same request in a later test of the worker gets the same hosts. */
  scope?: LeaseScope;
}

/**
 * Leases hosts for the test (or the worker): a host name, `{ tags: [...] }`, or a list of
 * selectors granted together (the hosts come back in the same order). Waits in queue order
 * while they are busy; the transcript says for what and behind whom.
 */
export interface LeaseFixture {
  (selector: LeaseSelector, options?: LeaseFixtureOptions): Promise<Host>;
  (selectors: readonly LeaseSelector[], options?: LeaseFixtureOptions): Promise<Host[]>;
}

/** Annotation that `exclusive()` puts on a test: the hosts to lease for it. */
export const EXCLUSIVE_ANNOTATION = 'labwright:exclusive';

/** The leases a worker holds until it ends. */
export class WorkerLeases {
  private readonly held: HostLease[] = [];
  private readonly named = new Map<string, Promise<HostLease>>();

  /** The worker's lease called `key`, made on first request: every test of the worker asking the same gets the same hosts. */
  once(key: string, make: () => Promise<HostLease>): Promise<HostLease> {
    let pending = this.named.get(key);
    if (!pending) {
      pending = make().then((held) => (this.held.push(held), held));
      this.named.set(key, pending);
      pending.catch(() => this.named.delete(key));
    }
    return pending;
  }

  async releaseAll(): Promise<void> {
    const held = this.held.splice(0).reverse();
    this.named.clear();
    for (const lease of held) await lease.release();
  }
}

/** `[project] file › describe › title (shard 1/3)`: who holds a device, for everyone else. */
function purposeOf(testInfo: TestInfo, scope: LeaseScope): string {
  const project = testInfo.project.name ? `[${testInfo.project.name}] ` : '';
  const shard = testInfo.config.shard ? ` (shard ${testInfo.config.shard.current}/${testInfo.config.shard.total})` : '';
  const what = scope === 'worker' ? `worker ${testInfo.workerIndex}, from test ${testInfo.titlePath.join(' › ')}` : testInfo.titlePath.join(' › ');
  return `${project}${what}${shard}`;
}

/** The wait bound: the caller's, else the lab's within the test's own timeout (so the lease's message, not a bare test timeout, explains). */
function waitBound(testInfo: TestInfo, lab: Lab, own: number | undefined, scope: LeaseScope): number {
  if (own !== undefined) return own;
  const labBound = lab.config.leases.waitTimeout;
  if (scope === 'worker' || testInfo.timeout <= 0) return labBound;
  return Math.min(labBound, Math.max(1_000, testInfo.timeout - 2_000));
}

/** Body of the test fixture `lease`. */
export async function leaseFixture(
  { lab, _labwrightWorkerLeases }: { lab: Lab; _labwrightWorkerLeases: WorkerLeases },
  use: (lease: LeaseFixture) => Promise<void>,
  testInfo: TestInfo,
): Promise<void> {
  const held: HostLease[] = [];
  const lease = async (selectors: LeaseSelector | readonly LeaseSelector[], options: LeaseFixtureOptions = {}) => {
    const { scope = 'test', ...rest } = options;
    const request: LeaseOptions = { ...rest, timeout: waitBound(testInfo, lab, rest.timeout, scope), purpose: purposeOf(testInfo, scope) };
    const granted =
      scope === 'worker'
        ? await _labwrightWorkerLeases.once(`lease ${JSON.stringify(selectors)}`, () => lab.lease(selectors, request))
        : await lab.lease(selectors, request);
    if (scope === 'test') held.push(granted);
    return Array.isArray(selectors) ? granted.hosts : granted.host;
  };
  try {
    await use(lease as LeaseFixture);
  } finally {
    for (const granted of held.reverse()) await granted.release();
  }
}

/** Body of the test fixture behind `dut` when the project has a `pool`. */
export async function poolFixture(
  { lab, pool, _labwrightWorkerLeases }: { lab: Lab; pool: PoolOption | undefined; _labwrightWorkerLeases: WorkerLeases },
  use: (host: Host | undefined) => Promise<void>,
  testInfo: TestInfo,
): Promise<void> {
  if (!pool) return use(undefined);
  if ((pool.tags === undefined) === (pool.host === undefined)) {
    throw new LabwrightError(`the pool option of project "${testInfo.project.name}" must name either tags or a host, not ${pool.tags ? 'both' : 'neither'}.`, {
      protocol: 'lease',
      hint: "Write use: { pool: { tags: ['arm64'] } } or use: { pool: { host: 'dut1' } } in playwright.config.ts.",
    });
  }
  const selector: LeaseSelector = pool.tags ? { tags: pool.tags } : pool.host!;
  const scope = pool.scope ?? 'test';
  const request = (): LeaseOptions => ({
    priority: pool.priority,
    timeout: waitBound(testInfo, lab, pool.timeout, scope),
    purpose: purposeOf(testInfo, scope),
  });
  if (scope === 'worker') {
    const held = await _labwrightWorkerLeases.once('pool', () => lab.lease(selector, request()));
    return use(held.host);
  }
  const held = await lab.lease(selector, request());
  try {
    await use(held.host);
  } finally {
    await held.release();
  }
}

/** Body of the test fixture that leases the hosts of `exclusive()` (set up before `host`, `remote` and `dut`). */
export async function exclusiveFixture({ lab }: { lab: Lab }, use: (value: void) => Promise<void>, testInfo: TestInfo): Promise<void> {
  const hosts = [
    ...new Set(testInfo.annotations.filter((a) => a.type === EXCLUSIVE_ANNOTATION).flatMap((a) => (a.description ?? '').split(',').filter(Boolean))),
  ];
  if (hosts.length === 0) return use();
  // One request for every host: two tests wanting overlapping hosts can never deadlock.
  const held = await lab.lease(hosts, { timeout: waitBound(testInfo, lab, undefined, 'test'), purpose: purposeOf(testInfo, 'test') });
  try {
    await use();
  } finally {
    await held.release();
  }
}

/** Body of the worker fixture holding the worker's leases (it depends on `lab` so that it ends, releasing them, before the lab closes). */
export async function workerLeasesFixture({ lab: _lab }: { lab: Lab }, use: (leases: WorkerLeases) => Promise<void>): Promise<void> {
  const leases = new WorkerLeases();
  try {
    await use(leases);
  } finally {
    await leases.releaseAll();
  }
}
