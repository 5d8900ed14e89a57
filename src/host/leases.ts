/**
 * Leasing lab hosts: selectors resolved against the lab's hosts and tags, each lease tied to
 * its hosts (a host whose lease is lost refuses further calls), and every step of a lease
 * reported as a lab event, so the transcript of a test that waited says for what, behind
 * whom, and for how long.
 */
import os from 'node:os';
import path from 'node:path';

import { type LabConfig, LOCAL_HOST } from '../config/defineLab.js';
import { type Lease, LeaseClient, type LeaseClientEvent } from '../lease/client.js';
import { openLeaseStore } from '../lease/open.js';
import { type LeaseSelector, resolveSelectors } from '../lease/selector.js';
import type { HolderInfo, LeaseSnapshot } from '../lease/types.js';
import { messageOf } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import type { HostContext, LeaseEventKind } from './events.js';
import type { Host } from './host.js';

/** Options of a lease request. */
export interface LeaseOptions {
  /** Bound (ms) on waiting for busy devices; default `leases.waitTimeout` of the lab (300000). */
  timeout?: number;
  /** Higher is served first; equal priorities in order of arrival. Default 0. */
  priority?: number;
  /** What the lease is for, shown to other holders and waiters; the fixtures give the test's title. Default: the script's name. */
  purpose?: string;
}

/** Transcript name for lease events that belong to no device yet (a pool request that failed). */
export const LEASES_TRANSCRIPT = 'leases';

/**
 * Leased hosts. Use `host`/`hosts` while the lease is held; once it is lost (it expired, or
 * the store gave the device to someone else) every call on these hosts throws a LeaseError.
 * `release()` (or `await using`) gives the devices back.
 */
export class HostLease implements AsyncDisposable {
  /** @internal Made by {@link LabLeases.lease}. */
  constructor(
    /** The underlying lease: devices, fencing tokens, validity. */
    readonly lease: Lease,
    /** The leased hosts, in the order of the selectors. */
    readonly hosts: Host[],
    private readonly onRelease: () => Promise<void>,
  ) {}

  /** The (first) leased host. */
  get host(): Host {
    return this.hosts[0]!;
  }

  /** Fencing token of the (first) host: larger than any earlier holder's. */
  get token(): number {
    return this.lease.token;
  }

  /** Fencing token of the host called `name`. */
  tokenOf(name: string): number {
    return this.lease.tokenOf(name);
  }

  /** Why the lease was lost, or undefined while held. */
  get lost(): string | undefined {
    return this.lease.lost;
  }

  /** Gives the devices back (idempotent). A release the store does not get is reported; the lease then expires by itself. */
  release(): Promise<void> {
    return this.onRelease();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** Who this process is, for other holders and waiters. */
function holderInfo(purpose: string | undefined): HolderInfo {
  let user: string | undefined;
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): the user is left out.
  }
  return { machine: os.hostname(), pid: process.pid, ...(user ? { user } : {}), purpose: purpose ?? path.basename(process.argv[1] ?? 'node') };
}

/** The leases of one lab: one client (one store connection, one heartbeat) per lab. */
export class LabLeases {
  private opening: Promise<LeaseClient> | undefined;
  private readonly open = new Set<HostLease>();

  constructor(
    private readonly config: LabConfig,
    private readonly hostOf: (name: string) => Host,
    private readonly context: HostContext,
  ) {}

  private emit(hosts: readonly string[], event: LeaseEventKind, detail: string, time = Date.now()): void {
    for (const host of hosts) this.context.events.emit({ type: 'lease', time, host, event, detail });
  }

  /** The lab's lease client, opening the store on first use (a failure is reported and retried on the next call). */
  client(): Promise<LeaseClient> {
    this.opening ??= (async () => {
      const { leases } = this.config;
      const client = new LeaseClient(await openLeaseStore(leases), leases);
      client.onEvent((event: LeaseClientEvent) => {
        if (event.type === 'lost')
          this.emit(event.devices, 'lost', `${event.devices.join(', ')} (token ${event.token}): ${event.reason}; further calls on this host fail`);
        else if (event.type === 'renew-failed') this.emit(event.devices, 'renew-failed', `(${event.error}); retrying, the lease holds until its TTL runs out`);
        else
          this.emit(event.devices, 'renewed', `after ${formatDuration(event.afterMs)} of failed renewals: the store answered in time, the lease is still held`);
      });
      return client;
    })();
    this.opening.catch(() => (this.opening = undefined));
    return this.opening;
  }

  /**
   * Leases hosts: one selector (a host name, `{ host }` or `{ tags: [...] }`) or several,
   * granted together. Waits while they are busy, in queue order, up to `timeout`.
   */
  async lease(selectors: LeaseSelector | readonly LeaseSelector[], options: LeaseOptions = {}): Promise<HostLease> {
    const list: readonly LeaseSelector[] = Array.isArray(selectors) ? selectors : [selectors as LeaseSelector];
    const { config } = this;
    const devices = [{ name: LOCAL_HOST, tags: config.local.tags }, ...Object.values(config.hosts).map((host) => ({ name: host.name, tags: host.tags }))];
    const { slots, text } = resolveSelectors(list, devices, config.source ?? 'the lab');
    // Named hosts get their lines at once; a pool request's lines wait until it knows its devices.
    const named = slots.every((slot) => slot.length === 1) ? slots.map((slot) => slot[0]!) : undefined;
    const pending: { time: number; detail: string }[] = [];
    const waiting = (situation: string) => {
      const detail = `for ${text}: ${situation}`;
      if (named) this.emit(named, 'waiting', detail);
      else pending.push({ time: Date.now(), detail });
    };
    const flush = (hosts: readonly string[]) => pending.forEach(({ time, detail }) => this.emit(hosts, 'waiting', detail, time));

    return this.context.step(`lease ${text}`, async () => {
      let lease: Lease;
      let store = config.leases.store.description;
      try {
        const client = await this.client();
        store = client.store.description;
        lease = await client.acquire({
          slots,
          selector: text,
          holder: holderInfo(options.purpose),
          priority: options.priority,
          timeout: options.timeout,
          onWait: (report) => waiting(report.text),
        });
      } catch (error) {
        const hosts = named ?? [LEASES_TRANSCRIPT];
        flush(hosts);
        this.emit(hosts, 'failed', messageOf(error));
        throw error;
      }
      flush(lease.devices);
      const waited = lease.waitedMs > 0 ? ` after waiting ${formatDuration(lease.waitedMs)}` : '';
      this.emit(lease.devices, 'acquired', `${lease.devices.map((d) => `${d} (token ${lease.tokenOf(d)})`).join(', ')} from the ${store}${waited}`);
      const hosts = lease.devices.map((device) => this.hostOf(device));
      const detach = hosts.map((host) => host.attachLease(lease));
      let releasing: Promise<void> | undefined;
      const handle: HostLease = new HostLease(
        lease,
        hosts,
        () =>
          (releasing ??= (async () => {
            this.open.delete(handle);
            detach.forEach((undo) => undo());
            const lost = lease.lost;
            try {
              await lease.release();
              this.emit(lease.devices, 'released', `${lease.devices.join(', ')} (token ${lease.token})${lost ? `, which had been lost: ${lost}` : ''}`);
            } catch (error) {
              this.emit(
                lease.devices,
                'failed',
                `the release did not reach the store (${messageOf(error)}); the lease expires by itself within ${formatDuration(config.leases.ttl)}`,
              );
            }
          })()),
      );
      this.open.add(handle);
      return handle;
    });
  }

  /** Who holds what and who waits in the lab's store. */
  async snapshot(): Promise<LeaseSnapshot> {
    return (await this.client()).store.snapshot();
  }

  /** Releases every lease still open and closes the store. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.open].map((handle) => handle.release()));
    const opening = this.opening;
    this.opening = undefined;
    const client = await opening?.catch(() => undefined);
    await client?.close();
  }
}
