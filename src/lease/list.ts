/** Who holds what and who waits, for `labwright leases` and for scripts. */
import type { LabConfig } from '../config/defineLab.js';
import type { LeaseConfig } from '../config/leases.js';
import { openLeaseStore } from './open.js';
import type { LeaseSnapshot } from './types.js';

/**
 * Reads the holders (device, token, machine, process, purpose such as the test title, since,
 * expiry) and the queue (in serving order, with each request's selector, priority and
 * requester) of the lab's lease store, then closes it.
 *
 * ```ts
 * const lab = await loadLab(resolveLabFile());
 * const { holders, waiters } = await listLeases(lab);
 * ```
 */
export async function listLeases(source: LabConfig | LeaseConfig): Promise<LeaseSnapshot> {
  const config = 'leases' in source ? source.leases : source;
  const store = await openLeaseStore(config);
  try {
    return await store.snapshot();
  } finally {
    await store.close();
  }
}
