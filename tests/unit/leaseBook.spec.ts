/** The lease book: the scheduling and expiry rules every store applies, on plain data. */
import { expect, test } from '@playwright/test';

import { assignSlots, LeaseBook } from '../../src/lease/book.js';
import type { LeaseState, NewRequest } from '../../src/lease/types.js';

const holder = (purpose: string) => ({ machine: 'm', pid: 1, purpose });
const request = (purpose: string, slots: string[][], priority = 0): NewRequest => ({
  priority,
  slots,
  selector: purpose,
  holder: holder(purpose),
  ttlMs: 1_000,
});

/** A store in memory: each operation is one book at a given time. */
class MemoryStore {
  state: LeaseState = { seq: 0, holders: [], waiters: [] };
  now = 1_000_000;
  run<T>(operation: (book: LeaseBook) => T): T {
    const book = new LeaseBook(this.state, this.now);
    const value = operation(book);
    this.state = book.state();
    return value;
  }
  request(purpose: string, slots: string[][], priority = 0): number {
    return this.run((book) => {
      const id = book.enqueue(request(purpose, slots, priority));
      book.schedule();
      return id;
    });
  }
  holderOf(device: string): string | undefined {
    return this.state.holders.find((h) => h.device === device)?.holder.purpose;
  }
  release(device: string): void {
    const held = this.state.holders.find((h) => h.device === device)!;
    this.run((book) => {
      book.release({ device, token: held.token });
      book.schedule();
    });
  }
}

test('a free device is granted at once; a busy one queues the request and names its holder', () => {
  const store = new MemoryStore();
  const a = store.request('a', [['d1']]);
  expect(store.run((book) => book.outcome(a))).toMatchObject({ state: 'granted', devices: ['d1'], remainingMs: 1_000 });
  const b = store.request('b', [['d1']]);
  const waiting = store.run((book) => book.outcome(b));
  expect(waiting).toMatchObject({ state: 'waiting', position: 1, queueLength: 1, nextExpiryMs: 1_000 });
  expect(waiting.state === 'waiting' && waiting.blockers.map((h) => h.holder.purpose)).toEqual(['a']);
});

test('the queue is served in order of arrival, and a higher priority goes first', () => {
  const store = new MemoryStore();
  store.request('first holder', [['d1']]);
  store.request('low 1', [['d1']]);
  store.request('low 2', [['d1']]);
  store.request('high', [['d1']], 5);
  const served: string[] = [];
  for (let i = 0; i < 3; i++) {
    store.release('d1');
    served.push(store.holderOf('d1')!);
  }
  expect(served).toEqual(['high', 'low 1', 'low 2']);
});

test('tags: a request takes any free device of its candidates, never one outside them', () => {
  const store = new MemoryStore();
  store.request('x', [['d1', 'd2']]);
  store.request('y', [['d1', 'd2']]);
  store.request('z', [['d1', 'd2']]);
  expect([store.holderOf('d1'), store.holderOf('d2')].sort()).toEqual(['x', 'y']);
  store.request('other', [['d3']]);
  expect(store.holderOf('d3')).toBe('other');
  store.release('d3');
  expect(store.holderOf('d3')).toBeUndefined(); // z does not want d3
  store.release('d2');
  expect(store.holderOf('d2')).toBe('z');
});

test('a request for several devices gets them together, and single requests behind it cannot starve it', () => {
  const store = new MemoryStore();
  store.request('holds d1', [['d1']]);
  store.request('holds d2', [['d2']]);
  const both = store.request('both', [['d1'], ['d2']]);
  store.request('later d1', [['d1']]);
  store.release('d1');
  // d1 is kept for the pair rather than given to the later single request.
  expect(store.holderOf('d1')).toBeUndefined();
  store.release('d2');
  const outcome = store.run((book) => book.outcome(both));
  expect(outcome).toMatchObject({ state: 'granted', devices: ['d1', 'd2'] });
  expect(new Set(store.state.holders.map((h) => h.token)).size).toBe(1);
});

test('fencing tokens grow with every grant of a device', () => {
  const store = new MemoryStore();
  const tokens: number[] = [];
  for (let i = 0; i < 4; i++) {
    store.request(`h${i}`, [['d1']]);
    tokens.push(store.state.holders.find((h) => h.device === 'd1')!.token);
    store.release('d1');
  }
  expect([...tokens].sort((a, b) => a - b)).toEqual(tokens);
  expect(new Set(tokens).size).toBe(4);
});

test('an unrenewed lease expires on the store clock and its device goes to the next waiter; the late renewal is refused with the reason', () => {
  const store = new MemoryStore();
  store.request('dead', [['d1']]);
  const token = store.state.holders[0]!.token;
  const waiter = store.request('waiter', [['d1']]);
  store.now += 600;
  store.run((book) => book.checkIn(waiter));
  store.now += 600; // 1.2 s after the grant: past the 1 s TTL; the waiter checked in 0.6 s ago
  store.run((book) => {
    book.checkIn(waiter);
    book.schedule();
  });
  expect(store.holderOf('d1')).toBe('waiter');
  const late = store.run((book) => book.renew({ device: 'd1', token }, 1_000));
  expect(late).toMatchObject({ ok: false });
  expect(!late.ok && late.reason).toContain('leased again');
  expect(!late.ok && late.reason).toContain('"waiter"');
});

test('a renewal after expiry is refused even before anyone swept the lease', () => {
  const store = new MemoryStore();
  store.request('slow', [['d1']]);
  const token = store.state.holders[0]!.token;
  store.now += 1_000;
  const outcome = store.run((book) => book.renew({ device: 'd1', token }, 1_000));
  expect(outcome).toMatchObject({ ok: false });
  expect(!outcome.ok && outcome.reason).toMatch(/expired at .* before this renewal/);
  expect(store.state.holders).toEqual([]);
});

test('a waiter that stops checking in leaves the queue; a stale token releases nothing', () => {
  const store = new MemoryStore();
  store.request('holder', [['d1']]);
  const gone = store.request('gone', [['d1']]);
  const token = store.state.holders[0]!.token;
  store.now += 500;
  store.run((book) => book.renew({ device: 'd1', token }, 1_000));
  store.now += 600;
  expect(store.run((book) => (book.schedule(), book.outcome(gone)))).toEqual({ state: 'gone' });
  store.run((book) => book.release({ device: 'd1', token: token + 100 }));
  expect(store.holderOf('d1')).toBe('holder');
});

test('cancelling a request that was granted meanwhile releases its devices', () => {
  const store = new MemoryStore();
  const id = store.request('late cancel', [['d1']]);
  store.run((book) => book.cancel(id));
  expect(store.state.holders).toEqual([]);
});

test('changes() reports only what an operation changed', () => {
  const store = new MemoryStore();
  store.request('a', [['d1']]);
  store.request('b', [['d2']]);
  const book = new LeaseBook(store.state, store.now + 10);
  book.renew({ device: 'd1', token: store.state.holders.find((h) => h.device === 'd1')!.token }, 1_000);
  expect(book.changes()).toMatchObject({ seq: undefined, upsertHolders: [{ device: 'd1' }], deleteHolders: [], upsertWaiters: [], deleteWaiters: [] });
});

test('assignSlots fills narrow slots first and backtracks', () => {
  expect(assignSlots([['a', 'b'], ['a']], () => true)).toEqual(['b', 'a']);
  expect(assignSlots([['a', 'b'], ['b', 'c'], ['a']], (d) => d !== 'c')).toBeUndefined();
  expect(assignSlots([['a', 'b'], ['b', 'c'], ['a']], () => true)).toEqual(['b', 'c', 'a']);
});
