/**
 * A lab config error is reported once per run, not once per test: without the global
 * setup, every worker that needs the lab meets the error. The first one (across worker
 * processes, by an atomically created marker file named after the runner process and the
 * lab file) fails its test with the full list of problems; every other test that needs
 * the lab is skipped, naming the test that reported it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A key for this `playwright test` run: the runner process (the workers' parent) and its start time. */
function runKey(): string {
  let started = '';
  try {
    // Field 22 of /proc/<pid>/stat: the start time, so a reused pid is another run.
    started = readFileSync(`/proc/${process.ppid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ?? '';
  } catch {
    // Not Linux: the parent's pid alone.
  }
  return `${process.ppid}-${started}`;
}

/**
 * Claims the report of the config error of `labFile` for this run. Returns undefined when
 * this caller reports it, else the title of the test that did.
 */
export function claimConfigErrorReport(labFile: string, testTitle: string): string | undefined {
  const dir = path.join(os.tmpdir(), 'labwright-config-errors');
  mkdirSync(dir, { recursive: true });
  const marker = path.join(dir, `${runKey()}-${createHash('sha256').update(labFile).digest('hex').slice(0, 16)}`);
  try {
    writeFileSync(marker, testTitle, { flag: 'wx' });
    return undefined;
  } catch {
    try {
      return readFileSync(marker, 'utf8') || 'another test';
    } catch {
      return 'another test';
    }
  }
}
