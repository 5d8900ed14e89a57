/** The containerized lab for tests: a shared lab per worker and private labs for disruptive tests (see fixtures/lab/labConfig.ts for the host names). */
import { test as base } from '@playwright/test';

import { labInput } from '../../fixtures/lab/labConfig.js';
import { type Lab as StartedLab, type LabHost, type LabRole, startLab, type StartLabOptions } from '../../fixtures/lab/startLab.js';
import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';

export type { LabHost, LabRole, StartedLab };
export { knownHostsFile, labInput } from '../../fixtures/lab/labConfig.js';

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

/** A labwright Lab over a started container lab, with `overrides` for host `target`, and every event it emits. */
export function targetLab(started: StartedLab, overrides: Partial<HostInput> = {}) {
  const lab = new Lab(defineLab(labInput(started, { target: overrides })));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  return { lab, events, target: lab.remote('target') };
}

/** Starts a private lab for tests that restart, pause or break containers. */
export function privateLab(options: StartLabOptions): Promise<StartedLab> {
  return startLab(options);
}

export { expect } from '@playwright/test';
