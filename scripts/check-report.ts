/**
 * Opens the main job's HTML report in Debian's chromium (through playwright-core) and
 * checks that a test's transcript is shown inline: `npx tsx scripts/check-report.ts`.
 * Writes a screenshot to playwright-report/transcript-check.png.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';

import { chromium } from 'playwright-core';

const reportDir = path.resolve(process.argv[2] ?? 'playwright-report');
const testTitle = process.argv[3] ?? 'the default shell keeps state between commands';
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const server = createServer(async (request, response) => {
  const file = path.join(
    reportDir,
    decodeURIComponent((request.url ?? '/').split('?')[0]!) === '/' ? 'index.html' : decodeURIComponent(request.url!.split('?')[0]!),
  );
  try {
    response.end(await readFile(file));
  } catch {
    response.statusCode = 404;
    response.end();
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;

const browser = await chromium.launch({
  executablePath,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
  await page.goto(`http://127.0.0.1:${port}/index.html`);
  await page.getByText(testTitle).first().click();
  const attachment = page.getByText('transcript: local').first();
  await attachment.waitFor({ timeout: 10_000 });
  await attachment.scrollIntoViewIfNeeded();
  // Text attachments are listed collapsed; their body is rendered in the page once expanded.
  if (!(await page.locator('.attachment-body').filter({ hasText: '$ pwd' }).first().isVisible())) await attachment.click();
  const transcript = page.locator('.attachment-body, pre, code').filter({ hasText: '$ pwd' }).first();
  await transcript.waitFor({ timeout: 10_000 });
  const text = await transcript.innerText();
  await page.screenshot({ path: path.join(reportDir, 'transcript-check.png'), fullPage: true });
  if (!/\$ pwd/.test(text) || !/→ exit 0/.test(text)) throw new Error(`transcript text not as expected:\n${text}`);
  console.log(`OK: the report shows the transcript inline:\n${text.split('\n').slice(0, 8).join('\n')}`);
} finally {
  await browser.close();
  server.close();
}
