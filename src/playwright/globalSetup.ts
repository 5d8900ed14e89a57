/**
 * A global setup that validates the lab file before any test runs, so a bad config fails
 * the run once with its full list of problems instead of failing every test.
 *
 * ```ts
 * // playwright.config.ts
 * export default defineConfig({ globalSetup: 'labwright/global-setup' });
 * ```
 */
import { loadLab, resolveLabFile } from '../config/load.js';

export async function globalSetup(): Promise<void> {
  await loadLab(resolveLabFile());
}

export default globalSetup;
