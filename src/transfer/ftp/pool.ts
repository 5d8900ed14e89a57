/**
 * A small pool of connections with a fixed maximum size. Used for FTP, where one control
 * connection carries one transfer at a time: concurrent transfers each take a connection,
 * or queue for one when all are busy.
 */
import { formatDuration } from '../../util/time.js';

/** How the pool makes, checks and ends its resources. */
export interface PoolHooks<T> {
  /** Opens a new resource. */
  create(): Promise<T>;
  /** Whether an idle resource is still usable (may probe it); `false` replaces it. Must not throw. */
  validate(resource: T, idleMs: number): Promise<boolean>;
  /** Ends a resource. Must not throw. */
  destroy(resource: T, reason: 'closed' | 'lost'): Promise<void>;
  /** The error for a caller that waited `waitMs` without any connection being freed. */
  waitTimeoutError(waitMs: number, size: number): Error;
  /** The error for a caller of a closed pool. */
  closedError(): Error;
  /**
   * Whether a failed `create()` dooms the callers already waiting too (bad credentials: each
   * of them trying again would only repeat the refusal and could lock the account).
   */
  failsWaiters?(error: unknown): boolean;
}

/** Counters for diagnostics and tests. */
export interface PoolStats {
  size: number;
  /** Resources open or being opened. */
  open: number;
  busy: number;
  idle: number;
  waiting: number;
  /** Resources created since the pool was made. */
  created: number;
  /** Most resources ever in use at the same time. */
  peakBusy: number;
}

interface Idle<T> {
  resource: T;
  since: number;
}

interface Waiter<T> {
  /** Gets a resource handed over, or `undefined`: a slot was freed, create one. */
  wake(handoff: T | undefined): void;
  fail(error: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * At most `size` resources; callers beyond that wait in FIFO order. A waiter fails only when
 * no resource was released for `waitTimeout` ms (so a long queue behind healthy transfers
 * keeps going, while a pool stuck on hung transfers fails the queue with a clear error).
 */
export class Pool<T> {
  private readonly idle: Idle<T>[] = [];
  private readonly busy = new Set<T>();
  private readonly waiters: Waiter<T>[] = [];
  private opening = 0;
  private closed = false;
  private created = 0;
  private peakBusy = 0;

  constructor(
    private readonly size: number,
    private readonly waitTimeout: number,
    private readonly hooks: PoolHooks<T>,
  ) {}

  get stats(): PoolStats {
    return {
      size: this.size,
      open: this.idle.length + this.busy.size + this.opening,
      busy: this.busy.size,
      idle: this.idle.length,
      waiting: this.waiters.length,
      created: this.created,
      peakBusy: this.peakBusy,
    };
  }

  /**
   * Runs `body` with a resource held exclusively. When `body` fails and `isBroken(error)`
   * says the resource is no longer trustworthy, it is destroyed instead of reused.
   */
  async use<R>(body: (resource: T) => Promise<R>, isBroken: (error: unknown) => boolean): Promise<R> {
    const resource = await this.acquire();
    let broken = false;
    try {
      return await body(resource);
    } catch (error) {
      broken = isBroken(error);
      throw error;
    } finally {
      this.release(resource, broken);
    }
  }

  /** Destroys every resource, idle or busy, and fails all waiters. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.fail(this.hooks.closedError());
    const all = [...this.idle.splice(0).map((entry) => entry.resource), ...this.busy];
    this.busy.clear();
    await Promise.all(all.map((resource) => this.hooks.destroy(resource, 'closed')));
  }

  private async acquire(): Promise<T> {
    for (;;) {
      if (this.closed) throw this.hooks.closedError();
      const entry = this.idle.pop(); // most recently used first: it is the likeliest alive
      if (entry) {
        // Counted as busy while it is checked, so that nobody opens one more meanwhile.
        this.markBusy(entry.resource);
        const alive = await this.hooks.validate(entry.resource, Date.now() - entry.since);
        if (!this.busy.has(entry.resource)) throw this.hooks.closedError(); // close() took it
        if (alive) return entry.resource;
        this.busy.delete(entry.resource);
        await this.hooks.destroy(entry.resource, 'lost');
        continue;
      }
      if (this.opening + this.busy.size < this.size) return this.openOne();
      const handoff = await this.wait();
      if (handoff !== undefined) return handoff;
    }
  }

  private async openOne(): Promise<T> {
    this.opening++;
    let resource: T;
    try {
      resource = await this.hooks.create();
    } catch (error) {
      this.opening--;
      if (this.hooks.failsWaiters?.(error)) {
        for (const waiter of this.waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.fail(error as Error);
        }
      } else {
        this.wakeOne(undefined); // the slot is free again: let a waiter try
      }
      throw error;
    }
    this.opening--;
    this.created++;
    if (this.closed) {
      await this.hooks.destroy(resource, 'closed');
      throw this.hooks.closedError();
    }
    this.markBusy(resource);
    return resource;
  }

  private markBusy(resource: T): void {
    this.busy.add(resource);
    this.peakBusy = Math.max(this.peakBusy, this.busy.size);
  }

  private release(resource: T, broken: boolean): void {
    if (!this.busy.delete(resource)) return; // destroyed by close()
    if (broken) {
      void this.hooks.destroy(resource, 'lost');
      this.wakeOne(undefined);
    } else if (this.waiters.length > 0) {
      this.markBusy(resource);
      this.wakeOne(resource);
    } else {
      this.idle.push({ resource, since: Date.now() });
    }
    // Something was freed: the pool is making progress, so waiters get a fresh bound.
    for (const waiter of this.waiters) this.arm(waiter);
  }

  private wakeOne(handoff: T | undefined): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.wake(handoff);
    } else if (handoff !== undefined) {
      this.busy.delete(handoff);
      this.idle.push({ resource: handoff, since: Date.now() });
    }
  }

  private wait(): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = { wake: resolve, fail: reject, timer: undefined };
      this.waiters.push(waiter);
      this.arm(waiter);
    });
  }

  private arm(waiter: Waiter<T>): void {
    clearTimeout(waiter.timer);
    waiter.timer = setTimeout(() => {
      const index = this.waiters.indexOf(waiter);
      if (index >= 0) this.waiters.splice(index, 1);
      waiter.fail(this.hooks.waitTimeoutError(this.waitTimeout, this.size));
    }, this.waitTimeout);
  }
}

/** Message part for a pool wait that timed out. */
export function describeWait(waitMs: number, size: number): string {
  return `all ${size} connection(s) stayed busy and none was freed for ${formatDuration(waitMs)}`;
}
