/** Debian's chromium through playwright-core, for looking at HTML reports (Playwright's own browser download is not reachable here). */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';

import { type Browser, chromium } from 'playwright-core';

import { repoRoot } from './inlineTest.js';

/** Installs chromium when missing (scripts/ensure-chromium.sh, idempotent) and launches it headless. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = execFileSync('bash', [path.join(repoRoot, 'scripts/ensure-chromium.sh')], {
    timeout: 20 * 60_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .toString()
    .trim();
  return chromium.launch({
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
}

/** Serves a folder on 127.0.0.1 (the HTML report loads its data with fetch, which file:// URLs refuse). */
export async function serveFolder(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer(async (request, response) => {
    const relative = decodeURIComponent((request.url ?? '/').split('?')[0]!);
    try {
      response.end(await readFile(path.join(dir, relative === '/' ? 'index.html' : relative)));
    } catch {
      response.statusCode = 404;
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, server };
}
