/**
 * Recovery between tests. When a test fails, each remote host it used that declares a
 * recovery method (`lifecycle.recover`) is checked and, if it does not answer its health
 * check, recovered before the next test (in the failed test's teardown, so its transcript
 * says so). A host that cannot be recovered is written down in the project's output
 * directory: Playwright restarts the worker after a failure, and the next worker's lab
 * marks the host down, so every later test that uses it fails at once with the reason.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { TestInfo } from '@playwright/test';

import type { Lab } from '../host/lab.js';
import { messageOf } from '../util/errors.js';

/** Folder (in the project's output directory) of the hosts that could not be recovered in this run. */
const MARKS = '.labwright-unrecoverable';

interface Mark {
  host: string;
  test: string;
  reason: string;
}

/** Whether the test ended in a way that may have left a device broken. */
export function testFailed(testInfo: TestInfo): boolean {
  return testInfo.status === 'failed' || testInfo.status === 'timedOut';
}

/** Recovers the hosts `testInfo`'s test used, one after the other; marks those that cannot be recovered. */
export async function recoverHosts(lab: Lab, hosts: readonly string[], testInfo: TestInfo): Promise<void> {
  const after = `test "${testInfo.title}" ${testInfo.status === 'timedOut' ? 'timed out' : 'failed'}`;
  for (const name of hosts) {
    if (!lab.config.hosts[name]) continue;
    try {
      await lab.remote(name).recover(after);
    } catch (error) {
      mark(testInfo.project.outputDir, { host: name, test: testInfo.title, reason: messageOf(error) });
    }
  }
}

function mark(outputDir: string, entry: Mark): void {
  const dir = path.join(outputDir, MARKS);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${encodeURIComponent(entry.host)}.json`), JSON.stringify(entry));
}

/** Marks down, in a new worker's lab, the hosts an earlier worker of this run could not recover. */
export function applyMarks(lab: Lab, outputDir: string): void {
  const dir = path.join(outputDir, MARKS);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return;
  }
  for (const file of files) {
    try {
      const entry = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Mark;
      if (lab.config.hosts[entry.host])
        lab.remote(entry.host).markDown(`it could not be recovered after test "${entry.test}" failed earlier in this run (${entry.reason})`);
    } catch {
      // A mark being written right now is read by the next worker.
    }
  }
}
