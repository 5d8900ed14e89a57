/**
 * The lease book: the one place where lease semantics live, for every store. A store loads
 * the state inside its critical section (a PostgreSQL transaction under an advisory lock, a
 * lock file), applies one operation to a LeaseBook with the store's clock, and writes back
 * what changed (`changes()`).
 *
 * Scheduling: expired holders and waiters are dropped; then the queue is walked in order
 * (priority, then arrival) and each request gets its devices as soon as every one of its
 * slots can be filled with a distinct free device. A request for several devices that cannot
 * be served yet reserves the free devices it could use, so single-device requests behind it
 * cannot starve it. A request for one device never overtakes an earlier request that could use
 * the device freed.
 */
import { formatClock, formatDuration } from '../util/time.js';
import { describeHolding } from './describe.js';
import type { HolderRecord, LeaseKey, LeaseSnapshot, LeaseState, NewRequest, RenewOutcome, RequestOutcome, WaiterRecord } from './types.js';

/** Serving order: higher priority first, then earlier arrival, then lower id. */
function servingOrder(a: WaiterRecord, b: WaiterRecord): number {
  return b.priority - a.priority || a.enqueuedAt - b.enqueuedAt || a.id - b.id;
}

/**
 * Picks one distinct device per slot among those `usable`, or undefined. Slots with fewer
 * candidates are filled first; backtracking keeps it exact (requests name few devices).
 */
export function assignSlots(slots: readonly (readonly string[])[], usable: (device: string) => boolean): string[] | undefined {
  const order = slots.map((_, index) => index).sort((a, b) => slots[a]!.length - slots[b]!.length);
  const chosen: string[] = new Array<string>(slots.length);
  const taken = new Set<string>();
  const fill = (k: number): boolean => {
    if (k === order.length) return true;
    const slot = order[k]!;
    for (const device of slots[slot]!) {
      if (taken.has(device) || !usable(device)) continue;
      taken.add(device);
      chosen[slot] = device;
      if (fill(k + 1)) return true;
      taken.delete(device);
    }
    return false;
  };
  return fill(0) ? chosen : undefined;
}

/** What an operation changed, for the store to write back. */
export interface BookChanges {
  seq: number | undefined;
  upsertHolders: HolderRecord[];
  deleteHolders: string[];
  upsertWaiters: WaiterRecord[];
  deleteWaiters: number[];
}

export class LeaseBook {
  private readonly holders = new Map<string, HolderRecord>();
  private readonly waiters = new Map<number, WaiterRecord>();
  private seq: number;
  private readonly initial: LeaseState;
  /** Requests granted by this operation: their waiters are woken. */
  readonly granted: number[] = [];

  /** `now` is the store's clock (server epoch ms). */
  constructor(
    state: LeaseState,
    readonly now: number,
  ) {
    this.initial = state;
    this.seq = state.seq;
    for (const holder of state.holders) this.holders.set(holder.device, { ...holder });
    for (const waiter of state.waiters) this.waiters.set(waiter.id, { ...waiter });
  }

  /** Queues a request; returns its id. */
  enqueue(request: NewRequest): number {
    const id = ++this.seq;
    this.waiters.set(id, {
      id,
      priority: request.priority,
      slots: request.slots,
      selector: request.selector,
      holder: request.holder,
      enqueuedAt: request.enqueuedAt ?? this.now,
      expiresAt: this.now + request.ttlMs,
      ttlMs: request.ttlMs,
    });
    return id;
  }

  /** A waiter checks in: its request stays queued for another TTL. A granted request's leases are renewed (picked up). */
  checkIn(id: number): void {
    const waiter = this.waiters.get(id);
    if (waiter && waiter.expiresAt > this.now) waiter.expiresAt = this.now + waiter.ttlMs;
    for (const holder of this.holders.values()) {
      if (holder.requestId === id && holder.expiresAt > this.now) holder.expiresAt = this.now + holder.ttlMs;
    }
  }

  /** Withdraws a request; if it was granted meanwhile, its devices are released too. */
  cancel(id: number): void {
    this.waiters.delete(id);
    for (const holder of [...this.holders.values()]) if (holder.requestId === id) this.holders.delete(holder.device);
  }

  /** Renews one held device for `ttlMs`, unless the lease expired or another holder has it now. */
  renew(key: LeaseKey, ttlMs: number): RenewOutcome {
    const current = this.holders.get(key.device);
    const base = { device: key.device, token: key.token, ok: false as const };
    if (current?.token === key.token) {
      if (current.expiresAt > this.now) {
        current.expiresAt = this.now + ttlMs;
        return { device: key.device, token: key.token, ok: true, remainingMs: ttlMs };
      }
      this.holders.delete(key.device);
      return {
        ...base,
        reason: `the lease expired at ${formatClock(current.expiresAt)} (store clock), ${formatDuration(this.now - current.expiresAt)} before this renewal`,
      };
    }
    if (current) {
      return { ...base, reason: `the lease expired and the device was leased again: ${describeHolding(current, this.now)}` };
    }
    return { ...base, reason: 'the lease expired (or was released) and the store no longer has it' };
  }

  /** Releases one held device if `key` still holds it (a stale token releases nothing). */
  release(key: LeaseKey): void {
    if (this.holders.get(key.device)?.token === key.token) this.holders.delete(key.device);
  }

  /** Drops what expired and grants what can be granted, in serving order. */
  schedule(): void {
    for (const [device, holder] of this.holders) if (holder.expiresAt <= this.now) this.holders.delete(device);
    for (const [id, waiter] of this.waiters) if (waiter.expiresAt <= this.now) this.waiters.delete(id);
    const reserved = new Set<string>();
    const usable = (device: string) => !this.holders.has(device) && !reserved.has(device);
    for (const waiter of [...this.waiters.values()].sort(servingOrder)) {
      const devices = assignSlots(waiter.slots, usable);
      if (devices) {
        const token = ++this.seq;
        for (const device of devices) {
          this.holders.set(device, {
            device,
            token,
            requestId: waiter.id,
            holder: waiter.holder,
            since: this.now,
            expiresAt: this.now + waiter.ttlMs,
            ttlMs: waiter.ttlMs,
          });
        }
        this.waiters.delete(waiter.id);
        this.granted.push(waiter.id);
      } else if (waiter.slots.length > 1) {
        // Keep what it could use so far for it, slot by slot, so it is served eventually.
        const taken = new Set<string>();
        for (const slot of waiter.slots) {
          const device = slot.find((candidate) => usable(candidate) && !taken.has(candidate));
          if (device) taken.add(device);
        }
        for (const device of taken) reserved.add(device);
      }
    }
  }

  /** Where request `id` stands. */
  outcome(id: number): RequestOutcome {
    const held = [...this.holders.values()].filter((holder) => holder.requestId === id && holder.expiresAt > this.now);
    if (held.length > 0) {
      const first = held[0]!;
      return { state: 'granted', devices: held.map((h) => h.device), token: first.token, since: first.since, remainingMs: first.expiresAt - this.now };
    }
    const waiter = this.waiters.get(id);
    if (!waiter || waiter.expiresAt <= this.now) return { state: 'gone' };
    const queue = this.liveWaiters();
    const wanted = new Set(waiter.slots.flat());
    const blockers = [...this.holders.values()].filter((holder) => wanted.has(holder.device) && holder.expiresAt > this.now);
    const nextExpiry = Math.min(...blockers.map((holder) => holder.expiresAt));
    return {
      state: 'waiting',
      position: queue.findIndex((w) => w.id === id) + 1,
      queueLength: queue.length,
      ahead: queue
        .slice(
          0,
          queue.findIndex((w) => w.id === id),
        )
        .filter((w) => w.slots.flat().some((device) => wanted.has(device))),
      blockers,
      nextExpiryMs: Number.isFinite(nextExpiry) ? nextExpiry - this.now : undefined,
      now: this.now,
    };
  }

  /** Who holds what and who waits, leaving out what has expired. */
  snapshot(store: string): LeaseSnapshot {
    return {
      store,
      time: this.now,
      holders: [...this.holders.values()].filter((holder) => holder.expiresAt > this.now).sort((a, b) => a.device.localeCompare(b.device)),
      waiters: this.liveWaiters().map((waiter, index) => ({ ...waiter, position: index + 1 })),
    };
  }

  private liveWaiters(): WaiterRecord[] {
    return [...this.waiters.values()].filter((waiter) => waiter.expiresAt > this.now).sort(servingOrder);
  }

  /** The whole state as it is now. */
  state(): LeaseState {
    return { seq: this.seq, holders: [...this.holders.values()], waiters: [...this.waiters.values()] };
  }

  /** What differs from the state the book was loaded with. */
  changes(): BookChanges {
    // Only a holder's token and expiry, and a waiter's expiry, ever change: the rest is fixed at creation.
    const oldHolders = new Map(this.initial.holders.map((holder) => [holder.device, holder]));
    const oldWaiters = new Map(this.initial.waiters.map((waiter) => [waiter.id, waiter]));
    return {
      seq: this.seq === this.initial.seq ? undefined : this.seq,
      upsertHolders: [...this.holders.values()].filter((holder) => {
        const old = oldHolders.get(holder.device);
        return old?.token !== holder.token || old.expiresAt !== holder.expiresAt;
      }),
      deleteHolders: [...oldHolders.keys()].filter((device) => !this.holders.has(device)),
      upsertWaiters: [...this.waiters.values()].filter((waiter) => oldWaiters.get(waiter.id)?.expiresAt !== waiter.expiresAt),
      deleteWaiters: [...oldWaiters.keys()].filter((id) => !this.waiters.has(id)),
    };
  }

  /** Whether anything differs from the loaded state. */
  get changed(): boolean {
    const changes = this.changes();
    return (
      changes.seq !== undefined || changes.upsertHolders.length + changes.deleteHolders.length + changes.upsertWaiters.length + changes.deleteWaiters.length > 0
    );
  }
}
