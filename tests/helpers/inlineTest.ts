/**
 * Runs inline Playwright test files through the real `playwright test` CLI in a
 * subprocess, the way Playwright tests its own runner, and returns the JSON report. The
 * files go into the calling test's own output directory (`inline-N`), kept with its
 * results; `test` here carries `runInlineTest` and `startInlineTest` as fixtures, as
 * Playwright's own suite has them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { test as base } from '@playwright/test';
import type { JSONReport, JSONReportSuite, JSONReportTest, JSONReportTestResult, JSONReportTestStep } from '@playwright/test/reporter';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface InlineRun {
  exitCode: number;
  output: string;
  report: JSONReport | undefined;
  dir: string;
}

const DEFAULT_CONFIG = `
import { defineConfig } from '@playwright/test';
export default defineConfig({ workers: 1, reporter: [['json', { outputFile: 'report.json' }]], timeout: 60_000 });
`;

export interface InlineOptions {
  args?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Start the runner as the leader of its own process group, so a test can kill it with its workers. */
  detached?: boolean;
}

/** Writes `files` into a fresh directory and runs `playwright test` there (bounded by `timeoutMs`). */
export async function runInlineTest(files: Record<string, string>, options: InlineOptions = {}): Promise<InlineRun> {
  return (await startInlineTest(files, options)).finished;
}

/** A `playwright test` run in progress (with `detached`, `child` leads its own process group: `process.kill(-child.pid!, 'SIGKILL')`). */
export interface StartedInlineRun {
  dir: string;
  child: ChildProcess;
  finished: Promise<InlineRun>;
}

/** Like {@link runInlineTest}, but returns once the runner started. */
export async function startInlineTest(files: Record<string, string>, options: InlineOptions = {}): Promise<StartedInlineRun> {
  const dir = await inlineDirectory();
  const all: Record<string, string> = {
    'playwright.config.ts': DEFAULT_CONFIG,
    // Resolve `labwright` to this repository's sources, as its own tsconfig does.
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        baseUrl: '.',
        paths: { labwright: [path.join(repoRoot, 'src/index.ts')], 'labwright/core': [path.join(repoRoot, 'src/core.ts')] },
      },
    }),
    'package.json': JSON.stringify({ type: 'module' }),
    ...files,
  };
  for (const [name, content] of Object.entries(all)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  // Resolve @playwright/test from the repository for the inline files too.
  await mkdir(path.join(dir, 'node_modules'), { recursive: true });
  await symlinkModules(dir);

  const cli = path.join(repoRoot, 'node_modules/@playwright/test/cli.js');
  const child = spawn(process.execPath, [cli, 'test', ...(options.args ?? [])], {
    cwd: dir,
    // Leases go to a store of this run's own unless the test names one.
    env: {
      ...process.env,
      CI: '',
      FORCE_COLOR: '0',
      PLAYWRIGHT_HTML_OPEN: 'never',
      LABWRIGHT_LAB: '',
      LABWRIGHT_LEASES: path.join(dir, '.leases'),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const finished = (async () => {
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    const exitCode = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    clearTimeout(timer);
    let report: JSONReport | undefined;
    try {
      report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as JSONReport;
    } catch {
      report = undefined;
    }
    return { exitCode, output, report, dir };
  })();
  return { dir, child, finished };
}

/** A fresh directory for one inline run: in the current test's output directory, else (outside a test) under the OS temp directory. */
async function inlineDirectory(): Promise<string> {
  let outputDir: string | undefined;
  try {
    outputDir = base.info().outputDir;
  } catch {
    outputDir = undefined;
  }
  const parent = outputDir ?? path.join(os.tmpdir(), 'labwright-inline');
  await mkdir(parent, { recursive: true });
  return mkdtemp(path.join(parent, 'inline-'));
}

/** Fixtures running inline test files in the test's own output directory. */
export interface InlineTestFixtures {
  runInlineTest: typeof runInlineTest;
  startInlineTest: typeof startInlineTest;
}

/** Playwright's `test` with {@link InlineTestFixtures}; merge it (`mergeTests`) with other fixtures. */
export const test = base.extend<InlineTestFixtures>({
  // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
  runInlineTest: async ({}, use) => use(runInlineTest),
  // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
  startInlineTest: async ({}, use) => use(startInlineTest),
});
export { expect } from '@playwright/test';

async function symlinkModules(dir: string): Promise<void> {
  const { symlink } = await import('node:fs/promises');
  for (const name of ['@playwright', 'playwright', 'playwright-core']) {
    await symlink(path.join(repoRoot, 'node_modules', name), path.join(dir, 'node_modules', name)).catch(() => {});
  }
}

/** Every test of the report, with its title path. */
export function allTests(report: JSONReport): JSONReportTest[] {
  const tests: JSONReportTest[] = [];
  const visit = (suite: JSONReportSuite) => {
    for (const spec of suite.specs) for (const test of spec.tests) tests.push(Object.assign(test, { title: spec.title }));
    for (const child of suite.suites ?? []) visit(child);
  };
  report.suites.forEach(visit);
  return tests;
}

/** The single result of the test titled `title`. */
export function resultOf(report: JSONReport, title: string): JSONReportTestResult {
  const test = allTests(report).find((t) => (t as JSONReportTest & { title: string }).title === title);
  if (!test) throw new Error(`no test titled ${JSON.stringify(title)} in the report`);
  const result = test.results[test.results.length - 1];
  if (!result) throw new Error(`test ${JSON.stringify(title)} has no result`);
  return result;
}

/** Titles of all steps, depth first. */
export function stepTitles(steps: readonly JSONReportTestStep[] | undefined): string[] {
  return (steps ?? []).flatMap((step) => [step.title, ...stepTitles(step.steps)]);
}

/** The text of an attachment that was attached inline (body, not a file path). */
export function inlineAttachment(result: JSONReportTestResult, name: string): string {
  const attachment = result.attachments.find((a) => a.name === name);
  if (!attachment) throw new Error(`no attachment ${JSON.stringify(name)}; have: ${result.attachments.map((a) => a.name).join(', ')}`);
  if (attachment.body === undefined) throw new Error(`attachment ${JSON.stringify(name)} is a file (${attachment.path}), not inline`);
  return Buffer.from(attachment.body, 'base64').toString('utf8');
}

/**
 * A labwright error's message as the error itself has it, from the report's layout
 * (src/playwright/reportLayout.ts: lines wrapped at 100 columns with indented
 * continuations, `What to do:` on a line of its own).
 */
export function unwrapReported(message: string | undefined): string {
  return (message ?? '').replace(/\n\nWhat to do: /g, ' ').replace(/\n {2,4}(?=\S)/g, ' ');
}
