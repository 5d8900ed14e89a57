/** The channel budget: bounded FIFO waits, signals, idle holders reclaimed, shrinking, loss. */
import { expect, test } from '@playwright/test';

import { ChannelBudget, type Slot } from '../../src/transport/channelBudget.js';
import { AbortedError, ConnectionError, TimeoutError } from '../../src/util/errors.js';

const exec = { kind: 'exec', name: 'exec' } as const;

test('grants up to capacity, then queues in order and hands freed slots to the oldest waiter', async () => {
  const budget = new ChannelBudget(2, 'dut', 'probed');
  const a = await budget.acquire(exec, 1_000);
  await budget.acquire({ kind: 'shell', name: 'default' }, 1_000);
  const order: string[] = [];
  const first = budget.acquire(exec, 1_000).then((slot) => (order.push('first'), slot));
  const second = budget.acquire(exec, 1_000).then((slot) => (order.push('second'), slot));
  expect(budget.inUse).toBe(2);
  a.release();
  a.release(); // idempotent: frees one slot only
  (await first).release();
  await second;
  expect(order).toEqual(['first', 'second']);
  expect(budget.describeHolders()).toBe('shell default, exec');
});

test('a wait that runs out is a TimeoutError naming MaxSessions and the holders', async () => {
  const budget = new ChannelBudget(1, 'dut', 'configured');
  await budget.acquire({ kind: 'shell', name: 'default' }, 1_000);
  const error = await budget.acquire(exec, 50).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(TimeoutError);
  expect((error as Error).message).toMatch(
    /^dut \(ssh\): no SSH session channel free for exec within 50 ms: the server allows 1 per connection \(MaxSessions, configured\) and all are in use \(shell default\)/,
  );
});

test('a signal ends the wait with an AbortedError and leaves the queue intact', async () => {
  const budget = new ChannelBudget(1, 'dut', 'probed');
  const held = await budget.acquire(exec, 1_000);
  const controller = new AbortController();
  const aborted = budget.acquire(exec, 5_000, controller.signal).catch((e: unknown) => e);
  const next = budget.acquire(exec, 5_000);
  controller.abort(new Error('test over'));
  expect(await aborted).toBeInstanceOf(AbortedError);
  held.release();
  await expect(next).resolves.toBeDefined();
  await expect(budget.acquire(exec, 10, AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
});

test('an idle holder is asked to close when someone waits, and its slot goes to the waiter', async () => {
  const budget = new ChannelBudget(1, 'dut', 'probed');
  const sftp: Slot = await budget.acquire({ kind: 'sftp', name: 'sftp' }, 1_000);
  let reclaimed = 0;
  // Closing takes a moment: the slot is freed when the channel has closed.
  sftp.idle(() => {
    reclaimed++;
    setTimeout(() => sftp.release(), 20);
  });
  expect(reclaimed).toBe(0);
  const slot = await budget.acquire(exec, 1_000);
  expect(reclaimed).toBe(1);
  expect(budget.describeHolders()).toBe('exec');
  slot.release();
});

test('a holder marked busy again is not reclaimed', async () => {
  const budget = new ChannelBudget(1, 'dut', 'probed');
  const sftp = await budget.acquire({ kind: 'sftp', name: 'sftp' }, 1_000);
  let reclaimed = false;
  sftp.idle(() => (reclaimed = true));
  sftp.idle(undefined);
  await expect(budget.acquire(exec, 30)).rejects.toBeInstanceOf(TimeoutError);
  expect(reclaimed).toBe(false);
});

test('shrinking to what is in use makes later requests wait; a lost connection fails every waiter at once', async () => {
  const budget = new ChannelBudget(5, 'dut', 'probed');
  await budget.acquire(exec, 1_000);
  budget.shrinkToInUse();
  expect(budget.capacity).toBe(1);
  const waiting = budget.acquire(exec, 5_000).catch((e: unknown) => e);
  const lost = new ConnectionError('closed', 'the SSH connection was lost', { host: 'dut', protocol: 'ssh' });
  budget.abort(lost);
  expect(await waiting).toBe(lost);
  await expect(budget.acquire(exec, 10)).rejects.toBe(lost);
});

test('capacity is never 0', () => {
  expect(new ChannelBudget(0, 'dut', 'probed').capacity).toBe(1);
});
