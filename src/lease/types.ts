/**
 * The records of the lease layer: who holds which device, who waits for which, and what a
 * store answers. Times marked "server" are epoch milliseconds on the store's clock (the
 * PostgreSQL server's, or this machine's for the embedded store); durations are relative,
 * so a runner's clock never decides when a lease expires.
 */

/** Who holds or waits: shown to everyone else who waits, and by `labwright leases`. */
export interface HolderInfo {
  /** Host name of the machine (`os.hostname()`). */
  machine: string;
  /** Process id on that machine. */
  pid: number;
  /** User running the process. */
  user?: string;
  /** What it is for: a test's title path, a worker, a script. */
  purpose?: string;
}

/** A held device (one per device; a lease of several devices has one record per device, one token). */
export interface HolderRecord {
  device: string;
  /** Fencing token: grows with every grant, so a later holder always has a larger one. */
  token: number;
  /** The request this grant answered. */
  requestId: number;
  holder: HolderInfo;
  /** Server time of the grant. */
  since: number;
  /** Server time at which the lease ends unless renewed. */
  expiresAt: number;
  /** Time to live of each renewal (ms). */
  ttlMs: number;
}

/** A request waiting in the queue. */
export interface WaiterRecord {
  /** Request id, unique per store. */
  id: number;
  /** Higher goes first; equal priorities are served in order of arrival. */
  priority: number;
  /** One list of acceptable devices per device wanted; all are granted at once. */
  slots: string[][];
  /** The selector as the requester wrote it, for people. */
  selector: string;
  holder: HolderInfo;
  /** Server time of arrival (kept when a request is queued again after an outage). */
  enqueuedAt: number;
  /** Server time at which the request leaves the queue unless its waiter checks in. */
  expiresAt: number;
  ttlMs: number;
}

/** Everything a store keeps. */
export interface LeaseState {
  /** Last number handed out as a request id or a fencing token. */
  seq: number;
  holders: HolderRecord[];
  waiters: WaiterRecord[];
}

/** A new request. */
export interface NewRequest {
  priority: number;
  slots: string[][];
  selector: string;
  holder: HolderInfo;
  ttlMs: number;
  /** Arrival time to keep (server time) when the request is queued again. */
  enqueuedAt?: number;
}

/** Identifies one held device for renewal and release. */
export interface LeaseKey {
  device: string;
  token: number;
}

/** Where a request stands. */
export type RequestOutcome =
  | {
      state: 'granted';
      devices: string[];
      token: number;
      /** Server time of the grant. */
      since: number;
      /** Time left (ms) before the lease expires unless renewed, as of the store's answer. */
      remainingMs: number;
    }
  | {
      state: 'waiting';
      /** 1-based place in the whole queue. */
      position: number;
      queueLength: number;
      /** Requests ahead of this one that want some of the same devices. */
      ahead: WaiterRecord[];
      /** Holders of the devices this request can use. */
      blockers: HolderRecord[];
      /** Time (ms) until the first of `blockers` expires unless renewed. */
      nextExpiryMs: number | undefined;
      /** Server time of the answer. */
      now: number;
    }
  | {
      /** The request is neither queued nor granted: it expired (its waiter missed check-ins) or was cancelled. */
      state: 'gone';
    };

/** The answer to renewing one held device. */
export type RenewOutcome = { device: string; token: number; ok: true; remainingMs: number } | { device: string; token: number; ok: false; reason: string };

/** Who holds what and who waits, as one consistent picture. */
export interface LeaseSnapshot {
  /** The store, described without secrets. */
  store: string;
  /** Server time of the picture. */
  time: number;
  /** Held devices, by device name. */
  holders: HolderRecord[];
  /** The queue in the order it is served. */
  waiters: (WaiterRecord & { position: number })[];
}
