/**
 * Nothing outlives what it was started for: Playwright's test timeout interrupts the
 * command running for the test, AbortSignals end calls early, and the call's own timeout
 * comes before the host's default.
 */
import { execFileSync } from 'node:child_process';

import { defineLab } from '../../src/config/defineLab.js';
import { Lab } from '../../src/host/lab.js';
import { expect, inlineAttachment, resultOf, test } from '../helpers/inlineTest.js';
import { testLab } from '../helpers/labs.js';

/** Whether a process whose command line contains `marker` runs on the runner. */
function running(marker: string): boolean {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').some((line) => line.includes(marker) && !line.includes('ps -eo'));
}

test("Playwright's test timeout interrupts the command, the transcript ends it, and the next test has the host at once", async ({ runInlineTest }) => {
  // A sleep with an odd duration identifies the command among the runner's processes.
  const marker = 'sleep 97.31';
  const run = await runInlineTest(
    {
      'lab.config.ts': `import { defineLab } from 'labwright'; export default defineLab({});`,
      'a.spec.ts': `
        import { test, expect } from 'labwright';
        test('runs past its timeout', async ({ dut }) => {
          test.setTimeout(3_000);
          await dut.run('${marker}; echo never', { timeout: 120_000 });
        });
        test('the next test', async ({ dut, host }) => {
          const exec = (await host('local')).exec('echo exec works');
          expect(await dut.run('echo shell works')).toHaveOutput('shell works');
          expect(await exec).toSucceed();
        });
      `,
      'playwright.config.ts': `
        import { defineConfig } from '@playwright/test';
        export default defineConfig({ workers: 1, retries: 0, reporter: [['json', { outputFile: 'report.json' }]], timeout: 60_000 });
      `,
    },
    // Without the interrupt the worker's teardown waits for the whole sleep (97 s).
    { timeoutMs: 60_000 },
  );
  expect(run.report, run.output).toBeDefined();
  const first = resultOf(run.report!, 'runs past its timeout');
  expect(first.status).toBe('timedOut');
  const transcript = inlineAttachment(first, 'transcript: local');
  expect(transcript).toContain(`$ ${marker}; echo never`);
  expect(transcript).toMatch(/note: a command timeout of 2 min 0 s is longer than the [\d.]+ s this test has left/);
  expect(transcript).toMatch(
    /\[default\] → ABORTED · .* · aborted \(the test ended \(its 3000 ms timeout was exceeded\)\); the shell was interrupted and recovered/,
  );
  expect(transcript).not.toMatch(/│ never/);
  const second = resultOf(run.report!, 'the next test');
  expect(second.status, JSON.stringify(second.errors)).toBe('passed');
  expect(running(marker)).toBe(false);
});

test('an exec that is still running when its test ends is stopped too, and so is an exec left unawaited', async ({ runInlineTest }) => {
  const marker = 'sleep 93.17';
  const run = await runInlineTest({
    'lab.config.ts': `import { defineLab } from 'labwright'; export default defineLab({});`,
    'a.spec.ts': `
      import { test } from 'labwright';
      test('leaves an exec running', async ({ dut }) => {
        void dut.exec('${marker}', { timeout: 120_000 });
        await new Promise((resolve) => setTimeout(resolve, 300));
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
  const transcript = inlineAttachment(resultOf(run.report!, 'leaves an exec running'), 'transcript: local');
  expect(transcript).toMatch(/\[exec#\d+\] → ABORTED · .* aborted \(the test ended \(it finished\)\); the command was terminated/);
  expect(running(marker)).toBe(false);
});

test('AbortSignals end run, exec and expect early; the shell stays usable', async () => {
  const { lab } = testLab();
  const local = lab.host('local');

  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('operator pressed stop')), 200);
  const r = await local.run(['sleep 20', 'echo skipped'], { signal: controller.signal });
  expect(r.results[0]!.aborted).toBe(true);
  expect(r.results[0]!.status).toBe('error');
  expect(r.results[0]!.error).toMatch(/^aborted \(operator pressed stop\); the shell was interrupted and recovered/);
  expect(r.results[1]!.status).toBe('skipped');
  expect(r.results[1]!.error).toMatch(/not run: aborted \(operator pressed stop\)/);
  expect((await local.run('echo alive')).last.output).toBe('alive\n');

  const execController = new AbortController();
  setTimeout(() => execController.abort(new Error('enough')), 200);
  const e = await local.exec('sleep 20; echo late', { signal: execController.signal });
  expect(e).toMatchObject({ aborted: true, status: 'error', exitCode: null });
  expect(e.error).toMatch(/aborted \(enough\)/);

  const already = await local.exec('echo never', { signal: AbortSignal.abort(new Error('before start')) });
  expect(already).toMatchObject({ aborted: true, output: '' });
  expect(already.error).toMatch(/not started: aborted \(before start\)/);

  const expectController = new AbortController();
  setTimeout(() => expectController.abort(new Error('gave up')), 200);
  await expect(local.expect(/never comes/, { timeout: 20_000, signal: expectController.signal })).rejects.toThrow(/was aborted: gave up/);
  expect((await local.run('echo still alive')).last.output).toBe('still alive\n');
  await lab.close();
});

test('closing a host ends a command running on it at once instead of waiting for it', async () => {
  const { lab } = testLab();
  const local = lab.host('local');
  const pending = local.run('sleep 30', { timeout: 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await lab.close();
  const r = await pending;
  expect(r.last.aborted).toBe(true);
  expect(r.last.error).toMatch(/the session was closed/);
});

test("the call's timeout comes before the host's default, for one command and for a list", async () => {
  const lab = new Lab(defineLab({ defaults: { commandTimeout: 800 } }));
  const local = lab.host('local');
  const one = await local.run('sleep 1.5; echo done', { timeout: 20_000 });
  expect(one.last.status).toBe('success');
  expect(one.last.output).toBe('done\n');
  const list = await local.run(['sleep 1.5; echo a', 'echo b'], { timeout: 20_000 });
  expect(list.results.map((result) => result.status)).toEqual(['success', 'success']);
  // Without a call timeout the host default applies.
  const bounded = await local.run('sleep 1.5; echo done');
  expect(bounded.last.timedOut).toBe(true);
  // exec follows the same rule.
  expect((await local.exec('sleep 1.5; echo done', { timeout: 20_000 })).output).toBe('done\n');
  await lab.close();
});

test('exec cwd: the command runs there; a missing directory is an error result, not a failed command', async () => {
  const { lab } = testLab();
  const local = lab.host('local');
  expect((await local.exec('pwd', { cwd: '/tmp' })).output).toBe('/tmp\n');
  const missing = await local.exec('echo ran', { cwd: '/nonexistent/labwright' });
  expect(missing).toMatchObject({ status: 'error', exitCode: null, output: '' });
  expect(missing.error).toMatch(/the working directory "\/nonexistent\/labwright" does not exist/);
  const pty = await local.exec('test -t 1 && echo terminal', { pty: true });
  expect(pty.output.trim()).toBe('terminal');
  await lab.close();
});
