/**
 * The lease client of one process: acquires leases (waiting, bounded, in queue order),
 * keeps them alive with one heartbeat for all of them, notices when one is lost, releases.
 *
 * Validity is judged conservatively on this side too: a lease counts as held until the time
 * of the last successful renewal's *request* plus the TTL (monotonic clock). The store
 * computes the expiry from when it *received* that renewal, which is later, so this process
 * stops trusting a lease no later than the store gives the device away — even when it is cut
 * off from the store and hears nothing.
 */
import { performance } from 'node:perf_hooks';

import { LeaseError, messageOf } from '../util/errors.js';
import { formatClock, formatDuration, sleep } from '../util/time.js';
import { describeHolding, describeWaiter, listSome } from './describe.js';
import type { LeaseStore } from './store.js';
import type { HolderInfo, LeaseKey, RequestOutcome } from './types.js';

/** Settings of a client. */
export interface LeaseClientSettings {
  /** Lease time to live (ms); renewed every third of it. */
  ttl: number;
  /** Default bound (ms) on waiting. */
  waitTimeout: number;
  /** Bound (ms) on a release at the end. */
  connectTimeout: number;
}

/** What a waiting request reports while it waits. */
export interface WaitReport {
  selector: string;
  position: number;
  queueLength: number;
  /** A sentence: what it waits for and behind whom. */
  text: string;
}

/** Something a client's leases went through, for transcripts and logs. */
export type LeaseClientEvent =
  | { type: 'lost'; devices: string[]; token: number; reason: string }
  | { type: 'renew-failed'; devices: string[]; error: string }
  | { type: 'renewed'; devices: string[]; afterMs: number };

/** A request for devices. */
export interface AcquireRequest {
  /** One list of acceptable devices per device wanted; everything is granted at once. */
  slots: string[][];
  /** The selector as written, for people (`dut1`, `tags arm64, rev-b`). */
  selector: string;
  holder: HolderInfo;
  /** Higher is served first; default 0. */
  priority?: number;
  /** Bound (ms) on waiting; default the client's `waitTimeout`. */
  timeout?: number;
  /** Called when the request starts waiting and whenever its place or its blockers change. */
  onWait?: (report: WaitReport) => void;
}

/** One grant: devices held under one token. Shared by every handle of this process that uses it. */
class Grant {
  lostReason: string | undefined;
  refs = 1;
  constructor(
    readonly devices: string[],
    readonly token: number,
    /** performance.now() until which the lease is surely valid. */
    public validUntil: number,
    readonly since: number,
    /** How long (ms) the request waited in the queue (0: granted at once). */
    readonly waitedMs: number,
  ) {}
  get keys(): LeaseKey[] {
    return this.devices.map((device) => ({ device, token: this.token }));
  }
}

/**
 * Held devices. Check `lost`, or call `assertHeld()` before touching a device (the host layer
 * does it before every call on a leased host); `release()` when done (or `await using`).
 */
export class Lease implements AsyncDisposable {
  private released = false;

  /** @internal Created by {@link LeaseClient.acquire}. */
  constructor(
    private readonly client: LeaseClient,
    private readonly grants: Grant[],
    /** The devices of this lease, in the order of the request's slots. */
    readonly devices: string[],
    /** How long (ms) the request waited in the queue (0: granted at once, or shared with a lease this process holds). */
    readonly waitedMs: number,
    /** The store, described. */
    readonly store: string,
  ) {}

  /** Fencing token of each device: larger than that of every earlier holder of the device. */
  tokenOf(device: string): number {
    const grant = this.grants.find((g) => g.devices.includes(device));
    if (!grant) throw new Error(`${device} is not part of this lease`);
    return grant.token;
  }

  /** The fencing token (of the first device). */
  get token(): number {
    return this.tokenOf(this.devices[0]!);
  }

  /** Why the lease was lost, or undefined while it is held. */
  get lost(): string | undefined {
    if (this.released) return 'it was released';
    for (const grant of this.grants) {
      this.client.checkDeadline(grant);
      if (grant.lostReason) return grant.lostReason;
    }
    return undefined;
  }

  /** Throws a LeaseError (kind `lost`) naming `device` when the lease is no longer held. */
  assertHeld(device = this.devices[0]!): void {
    const reason = this.lost;
    if (reason === undefined) return;
    throw new LeaseError(
      'lost',
      `the lease on ${this.devices.join(', ')} (token ${this.token}) is no longer held: ${reason}. Another holder may be using the device now, so this call was not made.`,
      {
        host: device,
        hint: `Nothing more runs on it under this lease; check the runner's connection to the ${this.store}, or raise leases.ttl if this process stalls for long.`,
      },
    );
  }

  /** Releases the devices (a lost lease releases nothing: the store already moved on). Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.client.drop(this.grants);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

export class LeaseClient {
  private readonly grants = new Set<Grant>();
  private heartbeat: NodeJS.Timeout | undefined;
  private beating = false;
  private renewing: Promise<void> | undefined;
  private lastRenewError: string | undefined;
  /** performance.now() of the first failed renewal of the current outage. */
  private failingSince: number | undefined;
  private reached = false;
  private closed = false;
  private readonly listeners = new Set<(event: LeaseClientEvent) => void>();

  constructor(
    readonly store: LeaseStore,
    readonly settings: LeaseClientSettings,
  ) {}

  /** Subscribes to losses and renewal failures; returns the unsubscribe function. */
  onEvent(listener: (event: LeaseClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: LeaseClientEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // Observers never change what leases do.
      }
    }
  }

  /** Devices this process holds now (not lost). */
  get held(): string[] {
    return [...this.grants].filter((grant) => !grant.lostReason).flatMap((grant) => grant.devices);
  }

  /**
   * Acquires devices: at once if they are free, else after waiting in the queue, bounded by
   * `timeout`. A device this process already holds (a wider lease) is shared, not requested
   * again. Throws a LeaseError: `timeout` (saying for what and behind whom it waited),
   * `unreachable` (the store, named) or `store`.
   */
  async acquire(request: AcquireRequest): Promise<Lease> {
    if (this.closed) throw new LeaseError('store', `the lease client of ${this.store.description} was closed.`, { hint: 'Open the lab again.' });
    const timeout = request.timeout ?? this.settings.waitTimeout;
    const deadline = performance.now() + timeout;

    // Slots naming one device this process already holds are served by that grant.
    const reused = new Map<number, Grant>();
    const open: number[] = [];
    request.slots.forEach((slot, index) => {
      const grant = slot.length === 1 ? this.liveGrantOf(slot[0]!) : undefined;
      if (grant) reused.set(index, grant);
      else open.push(index);
    });
    let fresh: Grant | undefined;
    if (open.length > 0) {
      fresh = await this.wait({ ...request, slots: open.map((index) => request.slots[index]!) }, deadline, timeout);
      this.grants.add(fresh);
      this.startHeartbeat();
    }
    for (const grant of new Set(reused.values())) grant.refs++;
    const devices = request.slots.map((_, index) => (reused.has(index) ? request.slots[index]![0]! : fresh!.devices[open.indexOf(index)]!));
    const grants = [...new Set([...reused.values(), ...(fresh ? [fresh] : [])])];
    return new Lease(this, grants, devices, fresh?.waitedMs ?? 0, this.store.description);
  }

  private liveGrantOf(device: string): Grant | undefined {
    return this.liveGrants().find((grant) => grant.devices.includes(device));
  }

  /** Grants still held, after checking their local validity. */
  private liveGrants(): Grant[] {
    for (const grant of this.grants) this.checkDeadline(grant);
    return [...this.grants].filter((grant) => !grant.lostReason);
  }

  /** Runs a store call; once the store has been reached, unreachability is retried until `deadline`. */
  private async call<T>(operation: () => Promise<T>, deadline: number): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const value = await operation();
        this.reached = true;
        return value;
      } catch (error) {
        const retry = this.reached && error instanceof LeaseError && error.kind === 'unreachable' && performance.now() + 250 < deadline;
        if (!retry) throw error;
        await sleep(Math.min(250 * 2 ** attempt, 2_000, Math.max(0, deadline - performance.now() - 100)));
      }
    }
  }

  /** Queues the request and waits for its grant (woken by the store's notifications, checking in periodically). */
  private async wait(request: AcquireRequest, deadline: number, timeout: number): Promise<Grant> {
    const { ttl } = this.settings;
    const newRequest = { priority: request.priority ?? 0, slots: request.slots, selector: request.selector, holder: request.holder, ttlMs: ttl };
    let sentAt = performance.now();
    let { id, outcome } = await this.call(() => this.store.request(newRequest), deadline);
    let enqueuedAt: number | undefined;
    let lastReport = '';
    let lastKey = '';
    let requeued = '';
    let waitedSince: number | undefined;
    let woken = false;
    let wake: (() => void) | undefined;
    const unsubscribe = this.store.onGrant((ids) => {
      if (ids && !ids.includes(id)) return;
      woken = true;
      wake?.();
    });
    try {
      for (;;) {
        if (outcome.state === 'granted') {
          return new Grant(
            outcome.devices,
            outcome.token,
            sentAt + outcome.remainingMs,
            outcome.since,
            waitedSince === undefined ? 0 : performance.now() - waitedSince,
          );
        }
        if (outcome.state === 'gone') {
          // The request left the queue without us (check-ins missed during a store outage): queue it again in its old place.
          requeued = 'queued again in its old place (its check-ins were missed, so the store had dropped it); ';
          lastKey = '';
          sentAt = performance.now();
          ({ id, outcome } = await this.call(() => this.store.request({ ...newRequest, enqueuedAt }), deadline));
          continue;
        }
        enqueuedAt ??= outcome.now;
        lastReport = waitText(outcome);
        waitedSince ??= performance.now();
        // Reported when its place, its blockers or the requests ahead change, not on every check-in.
        const key = JSON.stringify([outcome.position, outcome.blockers.map((b) => [b.device, b.token]), outcome.ahead.map((w) => w.id)]);
        if (key !== lastKey) {
          lastKey = key;
          request.onWait?.({ selector: request.selector, position: outcome.position, queueLength: outcome.queueLength, text: `${requeued}${lastReport}` });
          requeued = '';
        }
        const left = deadline - performance.now();
        if (left <= 0) {
          await this.store.cancel(id).catch(() => {});
          throw new LeaseError('timeout', `no device for ${request.selector} within ${formatDuration(timeout)}: ${lastReport}.`, {
            host: request.slots.length === 1 && request.slots[0]!.length === 1 ? request.slots[0]![0] : undefined,
            hint: 'Raise the wait bound (the timeout option or leases.waitTimeout), or free the devices (`labwright leases` shows who holds them).',
          });
        }
        // Check in well within the TTL, and right after the first blocker would expire.
        const expiry = outcome.nextExpiryMs === undefined ? Infinity : outcome.nextExpiryMs + 25;
        const nap = Math.max(10, Math.min(left, ttl / 3, 2_000, expiry));
        if (!woken) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, nap);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        wake = undefined;
        woken = false;
        sentAt = performance.now();
        try {
          outcome = await this.call(() => this.store.check(id), deadline);
        } catch (error) {
          await this.store.cancel(id).catch(() => {});
          throw error;
        }
      }
    } finally {
      unsubscribe();
    }
  }

  /** Marks a grant lost once its local validity has passed without a renewal. */
  checkDeadline(grant: Grant): void {
    if (grant.lostReason || performance.now() <= grant.validUntil) return;
    this.markLost(
      grant,
      `no renewal reached the ${this.store.description} within the lease's ${formatDuration(this.settings.ttl)}${this.lastRenewError ? ` (last error: ${this.lastRenewError})` : ''}`,
    );
  }

  private markLost(grant: Grant, reason: string): void {
    if (grant.lostReason) return;
    grant.lostReason = `${reason} [noticed at ${formatClock(Date.now())}]`;
    this.emit({ type: 'lost', devices: grant.devices, token: grant.token, reason });
  }

  /** One heartbeat loop renews every grant of this process, each third of the TTL (sooner after a failure). */
  private startHeartbeat(): void {
    if (this.beating) return;
    this.beating = true;
    this.scheduleBeat(this.settings.ttl / 3);
  }

  private scheduleBeat(delay: number): void {
    this.heartbeat = setTimeout(() => void this.beat(), delay);
    this.heartbeat.unref();
  }

  private async beat(): Promise<void> {
    this.heartbeat = undefined;
    const live = this.liveGrants();
    if (live.length === 0 || this.closed) {
      this.beating = false;
      return;
    }
    this.renewing = this.renew(live);
    await this.renewing;
    this.renewing = undefined;
    if (this.closed) this.beating = false;
    else this.scheduleBeat(this.lastRenewError ? Math.min(500, this.settings.ttl / 6) : this.settings.ttl / 3);
  }

  private async renew(grants: Grant[]): Promise<void> {
    const sentAt = performance.now();
    try {
      const outcomes = await this.store.renew(
        grants.flatMap((grant) => grant.keys),
        this.settings.ttl,
      );
      if (this.failingSince !== undefined) {
        this.emit({ type: 'renewed', devices: grants.flatMap((grant) => grant.devices), afterMs: sentAt - this.failingSince });
      }
      this.failingSince = undefined;
      this.lastRenewError = undefined;
      for (const grant of grants) {
        const mine = outcomes.filter((outcome) => outcome.token === grant.token && grant.devices.includes(outcome.device));
        const failed = mine.find((outcome) => !outcome.ok);
        if (failed && !failed.ok) this.markLost(grant, `the store says: ${failed.reason}`);
        else if (mine.length > 0) grant.validUntil = sentAt + Math.min(...mine.map((outcome) => (outcome.ok ? outcome.remainingMs : 0)));
      }
    } catch (error) {
      this.lastRenewError = messageOf(error);
      // Reported once per outage; `renewed` follows if the store comes back in time.
      if (this.failingSince === undefined) {
        this.failingSince = sentAt;
        this.emit({ type: 'renew-failed', devices: grants.flatMap((grant) => grant.devices), error: this.lastRenewError });
      }
    }
  }

  /** @internal A handle lets go of its grants: released in the store when no handle uses them any more. */
  async drop(grants: Grant[]): Promise<void> {
    const done = grants.filter((grant) => --grant.refs === 0);
    for (const grant of done) this.grants.delete(grant);
    for (const grant of done) this.checkDeadline(grant);
    const keys = done.filter((grant) => !grant.lostReason).flatMap((grant) => grant.keys);
    if (keys.length === 0) return;
    // Bounded: if the store cannot be reached the lease simply expires there.
    await this.call(() => this.store.release(keys), performance.now() + this.settings.connectTimeout);
  }

  /** Releases everything this process holds and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    const keys = [...this.grants].filter((grant) => !grant.lostReason).flatMap((grant) => grant.keys);
    this.grants.clear();
    if (keys.length > 0) await this.store.release(keys).catch(() => {});
    this.closed = true;
    if (this.heartbeat) clearTimeout(this.heartbeat);
    await this.renewing;
    await this.store.close();
  }
}

/** Where a waiting request stands, and behind whom. */
function waitText(outcome: Extract<RequestOutcome, { state: 'waiting' }>): string {
  const held =
    outcome.blockers.length > 0 ? listSome(outcome.blockers, (record) => describeHolding(record, outcome.now)) : 'no holder (reserved for a request ahead)';
  const ahead = outcome.ahead.length > 0 ? `; ${outcome.ahead.length} request(s) ahead: ${listSome(outcome.ahead, describeWaiter, 2)}` : '';
  return `number ${outcome.position} of ${outcome.queueLength} in the queue; ${held}${ahead}`;
}
