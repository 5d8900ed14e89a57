/**
 * A global setup that validates the lab file before any test runs, so a bad config fails
 * the run once with its full list of problems instead of failing every test. It also
 * tunes the workers' Node heap for throughput (see {@link workerNodeOptions}).
 *
 * ```ts
 * // playwright.config.ts
 * export default defineConfig({ globalSetup: 'labwright/global-setup' });
 * ```
 */
import { loadLab, resolveLabFile } from '../config/load.js';

/** Set to 1 to leave NODE_OPTIONS alone. */
export const NO_TUNING_ENV = 'LABWRIGHT_NO_TUNING';

/**
 * NODE_OPTIONS for the workers: a 64 MiB young generation. ssh2 allocates a buffer per
 * SSH packet; with V8's default semi-space the scavenger runs so often that it costs about
 * a quarter of the CPU of a bulk SFTP transfer (measured: 4.3 → 2.3-3.5 ns per byte).
 * V8 reads the flag only when a process starts, so it is set here, before Playwright
 * starts its workers, which inherit the environment. A value the user set wins.
 */
export function workerNodeOptions(current = process.env.NODE_OPTIONS ?? ''): string {
  if (process.env[NO_TUNING_ENV] === '1' || /--max-semi-space-size\b/.test(current)) return current;
  return `${current} --max-semi-space-size=64`.trim();
}

export async function globalSetup(): Promise<void> {
  await loadLab(resolveLabFile());
  process.env.NODE_OPTIONS = workerNodeOptions();
}

export default globalSetup;
