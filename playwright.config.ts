/**
 * The main job: the example lab suite in examples/, with an HTML report in
 * playwright-report/ (`npm run examples`, then `npx playwright show-report`).
 */
import { defineConfig } from '@playwright/test';
import type { LabwrightOptions } from 'labwright';

export default defineConfig<LabwrightOptions>({
  testDir: 'examples',
  // Users write 'labwright/global-setup'; inside this repository the source file is used.
  globalSetup: './src/playwright/globalSetup.ts',
  timeout: 120_000,
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  projects: [
    {
      name: 'local',
      use: { labFile: 'lab.config.ts', defaultHost: 'local' },
    },
  ],
});
