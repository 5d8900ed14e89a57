/**
 * The lease store interface, and the base every store built on a LeaseBook shares. A store
 * needs three things: a critical section over the whole state with a clock (`transact`), a
 * consistent read (`read`), and a way to wake waiters of other processes (`notify` plus
 * calling `wake` when another process granted something). Redis (WATCH/MULTI and pub/sub) or
 * etcd (transactions and watches) fit the same shape.
 */
import type { LeaseBook } from './book.js';
import type { LeaseKey, LeaseSnapshot, NewRequest, RenewOutcome, RequestOutcome } from './types.js';

/** Called when requests may have been granted: their ids, or undefined for "check yours". */
export type GrantListener = (requestIds: readonly number[] | undefined) => void;

/**
 * Where leases live. Every method is bounded; one that cannot reach the store rejects with a
 * LeaseError of kind `unreachable` naming the store, any other store failure with kind `store`.
 */
export interface LeaseStore {
  /** The store, described without secrets: `PostgreSQL store postgres://lab@db:5432/lab`. */
  readonly description: string;
  /** Queues a request and serves the queue; the request may be granted at once. */
  request(request: NewRequest): Promise<{ id: number; outcome: RequestOutcome }>;
  /** A waiter checks in (its request stays queued) and the queue is served; picks up a grant. */
  check(id: number): Promise<RequestOutcome>;
  /** Withdraws a request, releasing its devices if it was granted meanwhile. */
  cancel(id: number): Promise<void>;
  /** Renews held devices for `ttlMs`; each answer says whether that device is still held. */
  renew(leases: readonly LeaseKey[], ttlMs: number): Promise<RenewOutcome[]>;
  /** Releases held devices (stale tokens release nothing) and serves the queue. */
  release(leases: readonly LeaseKey[]): Promise<void>;
  /** Who holds what and who waits. */
  snapshot(): Promise<LeaseSnapshot>;
  /** Subscribes to grant notifications (from any process); returns the unsubscribe function. */
  onGrant(listener: GrantListener): () => void;
  /** Closes connections and watchers. Leases held through it are not released by this. */
  close(): Promise<void>;
}

/** A store whose semantics come from a LeaseBook applied inside the store's critical section. */
export abstract class BookStore implements LeaseStore {
  abstract readonly description: string;
  private readonly listeners = new Set<GrantListener>();

  /** Runs `operation` on the state inside the critical section and writes back what it changed. */
  protected abstract transact<T>(operation: (book: LeaseBook) => T): Promise<T>;
  /** A consistent read of the state. */
  protected abstract read(): Promise<LeaseBook>;
  abstract close(): Promise<void>;

  /** Tells the waiters in this process (and, through the store, in others) about grants. */
  protected wake(requestIds: readonly number[] | undefined): void {
    for (const listener of this.listeners) listener(requestIds);
  }

  private async mutate<T>(operation: (book: LeaseBook) => T): Promise<T> {
    let granted: number[] = [];
    const result = await this.transact((book) => {
      const value = operation(book);
      granted = book.granted;
      return value;
    });
    if (granted.length > 0) this.wake(granted);
    return result;
  }

  request(request: NewRequest): Promise<{ id: number; outcome: RequestOutcome }> {
    return this.mutate((book) => {
      const id = book.enqueue(request);
      book.schedule();
      return { id, outcome: book.outcome(id) };
    });
  }

  check(id: number): Promise<RequestOutcome> {
    return this.mutate((book) => {
      book.checkIn(id);
      book.schedule();
      return book.outcome(id);
    });
  }

  cancel(id: number): Promise<void> {
    return this.mutate((book) => {
      book.cancel(id);
      book.schedule();
    });
  }

  renew(leases: readonly LeaseKey[], ttlMs: number): Promise<RenewOutcome[]> {
    return this.mutate((book) => {
      const outcomes = leases.map((key) => book.renew(key, ttlMs));
      book.schedule();
      return outcomes;
    });
  }

  release(leases: readonly LeaseKey[]): Promise<void> {
    return this.mutate((book) => {
      for (const key of leases) book.release(key);
      book.schedule();
    });
  }

  async snapshot(): Promise<LeaseSnapshot> {
    return (await this.read()).snapshot(this.description);
  }

  onGrant(listener: GrantListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
