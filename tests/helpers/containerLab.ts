/** The containerized lab for tests: a shared lab per worker and private labs for disruptive tests (see fixtures/lab/labConfig.ts for the host names). */
import { test as base } from '@playwright/test';
import { startLab, type Lab as StartedLab, type LabHost, type LabRole, type StartLabOptions } from '../../fixtures/lab/startLab.js';

export type { StartedLab, LabHost, LabRole };
export { labInput, knownHostsFile } from '../../fixtures/lab/labConfig.js';

/** Test fixtures: one shared lab per worker (roles `target` and `telnetOnly`) for tests that do not disrupt it. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no test-scoped fixtures
export const test = base.extend<{}, { sharedLab: StartedLab }>({
  sharedLab: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
    async ({}, use) => {
      const lab = await startLab({ roles: ['target', 'telnetOnly'] });
      await use(lab);
      await lab.stop();
    },
    { scope: 'worker', timeout: 30 * 60_000, title: 'container lab' },
  ],
});

/** Starts a private lab for tests that restart, pause or break containers. */
export function privateLab(options: StartLabOptions): Promise<StartedLab> {
  return startLab(options);
}

export { expect } from '@playwright/test';
