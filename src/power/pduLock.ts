/**
 * The lock that makes one PDU's actions run one at a time across the processes of this
 * machine (Playwright runs tests in several worker processes, each with its own lab). A
 * lock whose holder died goes stale and is taken over. Within a process the PDU's own queue
 * orders the actions first.
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { sleep } from '../util/time.js';

/** Shared by every labwright process on this machine. */
const LOCK_DIR = path.join(os.tmpdir(), 'labwright-power');
/** A lock not refreshed for this long belongs to a dead process and is taken over. */
const STALE_MS = 10_000;
/** How often a holder refreshes its lock (well under STALE_MS). */
const UPDATE_MS = 2_000;
/** Pause between attempts while another process holds the lock. */
const RETRY_MS = 50;

/** Takes the machine-wide lock called `key`, waiting until `signal` fires; resolves with its release. */
export async function acquirePduLock(key: string, signal: AbortSignal): Promise<() => Promise<void>> {
  await mkdir(LOCK_DIR, { recursive: true });
  const file = path.join(LOCK_DIR, key.replace(/[^A-Za-z0-9_.-]/g, '_'));
  for (;;) {
    try {
      // A compromised lock (held past STALE_MS by a blocked event loop) is not worth crashing for.
      return await lockfile.lock(file, { realpath: false, stale: STALE_MS, update: UPDATE_MS, retries: 0, onCompromised: () => {} });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    }
    await sleep(RETRY_MS, signal);
  }
}
