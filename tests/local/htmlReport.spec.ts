/**
 * The HTML report as a person sees it, in Debian's chromium: the failing command's step is
 * marked failed in the steps tree and shows its outcome and output when expanded; a
 * labwright error is readable without horizontal scrolling.
 */
import path from 'node:path';

import type { Browser } from 'playwright-core';

import { launchChromium, serveFolder } from '../helpers/chromium.js';
import { expect, resultOf, test } from '../helpers/inlineTest.js';
import { closedPort } from '../helpers/net.js';

let browser: Browser;
test.beforeAll(async () => {
  test.setTimeout(25 * 60_000); // the first run on a fresh machine installs chromium
  browser = await launchChromium();
});
test.afterAll(async () => {
  await browser?.close();
});

test('the failing command is marked in the steps tree and shows its output; errors need no horizontal scrolling', async ({ runInlineTest }) => {
  const port = await closedPort();
  const run = await runInlineTest({
    'lab.config.ts': `
      import { defineLab } from 'labwright';
      export default defineLab({ hosts: { board: { address: '127.0.0.1', ssh: { port: ${port}, connectAttempts: 1 }, users: { root: { password: 'pw-for-report' } } } } });
    `,
    'playwright.config.ts': `
      import { defineConfig } from '@playwright/test';
      export default defineConfig({ workers: 1, reporter: [['json', { outputFile: 'report.json' }], ['html', { outputFolder: 'html', open: 'never' }]] });
    `,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('flashes the image', async ({ dut }) => {
        await dut.run('echo "checking space"');
        const r = await dut.run('echo "writing image"; echo "error: disk full" >&2; (exit 28)');
        expect(r).toSucceed();
      });
      test('board is down', async ({ host }) => {
        await (await host('board')).run('true');
      });
    `,
  });
  expect(resultOf(run.report!, 'flashes the image').status).toBe('failed');
  const { url, server } = await serveFolder(path.join(run.dir, 'html'));
  const page = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
  try {
    await page.goto(url);
    await page.getByText('flashes the image').first().click();
    const failing = page.locator('.step-title-container[aria-label="local: echo \\"writing image\\"; echo \\"error: disk full\\" >&2; (exit 28)"]');
    await failing.waitFor();
    // Marked failed in the tree, while the command before it is marked passed.
    await expect(failing.locator('svg.color-text-danger')).toHaveCount(1);
    await expect(page.locator('.step-title-container[aria-label="local: echo \\"checking space\\""] svg.color-icon-success')).toHaveCount(1);
    // Expanded, the step shows its outcome (marked too) and its output.
    await failing.click();
    const outcome = page.locator('.step-title-container[aria-label^="→ exit 28 · "]');
    await expect(outcome).toBeVisible();
    await expect(outcome.locator('svg.color-text-danger')).toHaveCount(1);
    await expect(page.locator('.step-title-container[aria-label="│ writing image"]')).toBeVisible();
    // The shell shows stderr as the terminal did, in order.
    await expect(page.locator('.step-title-container[aria-label="│ error: disk full"]')).toBeVisible();
    await page.screenshot({ path: test.info().outputPath('failing-command-step.png'), fullPage: true });

    await page.goto(url);
    await page.getByText('board is down').first().click();
    const error = page.locator('.test-error-view').first();
    await expect(error).toContainText('What to do: Nothing listens there');
    const overflow = await error.evaluate((element) => element.scrollWidth - element.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: test.info().outputPath('error-layout.png'), fullPage: true });
  } finally {
    await page.close();
    server.close();
  }
});
