/** One wording for holders, waiters and queues, in messages, transcripts and `labwright leases`. */
import { formatClock, formatDuration } from '../util/time.js';
import type { HolderInfo, HolderRecord, WaiterRecord } from './types.js';

/** `pid 4711 on ci-2 (user lab) for "a.spec.ts › flashes"`. */
export function describeHolder(holder: HolderInfo): string {
  return `pid ${holder.pid} on ${holder.machine}${holder.user ? ` (user ${holder.user})` : ''}${holder.purpose ? ` for "${holder.purpose}"` : ''}`;
}

/** `dut1 held by pid 4711 on ci-2 for "..." since 12:00:01.000 (token 17), expires in 9.20 s unless renewed`. */
export function describeHolding(record: HolderRecord, now: number): string {
  const left = record.expiresAt - now;
  return (
    `${record.device} held by ${describeHolder(record.holder)} since ${formatClock(record.since)} (token ${record.token}), ` +
    (left > 0 ? `expires in ${formatDuration(left)} unless renewed` : 'expired')
  );
}

/** `request #42 (tags arm64, priority 5) of pid 77 on ci-1 for "...", queued since 12:00:00.500`. */
export function describeWaiter(waiter: WaiterRecord): string {
  return (
    `request #${waiter.id} (${waiter.selector}${waiter.priority ? `, priority ${waiter.priority}` : ''}) of ${describeHolder(waiter.holder)}, ` +
    `queued since ${formatClock(waiter.enqueuedAt)}`
  );
}

/** Several holdings or waiters as one sentence part, the first few in full. */
export function listSome<T>(items: readonly T[], describe: (item: T) => string, most = 3): string {
  const shown = items.slice(0, most).map(describe).join('; ');
  return items.length > most ? `${shown}; and ${items.length - most} more` : shown;
}
