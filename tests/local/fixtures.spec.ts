/**
 * The Playwright integration, tested the way Playwright tests its runner: inline test
 * files run through the real `playwright test` in a subprocess; assertions on the JSON report.
 */
import { expect, inlineAttachment, resultOf, stepTitles, test } from '../helpers/inlineTest.js';

const LAB = `
import { defineLab } from 'labwright';
export default defineLab({ local: { commandTimeout: 15_000 } });
`;

test('each command is a step titled with host and command, and the transcript is attached inline', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('steps and transcript', async ({ host }) => {
        const local = await host('local');
        const r = await local.run(['cd /tmp', 'echo "hello transcript"']);
        expect(r).toSucceed();
        expect(await local.exec('echo from exec; echo to stderr >&2')).toSucceed();
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
  const result = resultOf(run.report!, 'steps and transcript');
  const titles = stepTitles(result.steps);
  expect(titles).toContain('local: cd /tmp');
  expect(titles).toContain('local: echo "hello transcript"');
  expect(titles).toContain('local/exec: echo from exec; echo to stderr >&2');

  const transcript = inlineAttachment(result, 'transcript: local');
  expect(transcript).toMatch(/^\d\d:\d\d:\d\d\.\d{3} \[default\] \$ cd \/tmp$/m);
  expect(transcript).toMatch(/\[default\] \$ echo "hello transcript"\n\s+│ hello transcript\n\d\d:\d\d:\d\d\.\d{3} \[default\] → exit 0 · \d+ ms/);
  expect(transcript).toMatch(
    /\[exec#(\d+)\] \$ echo from exec; echo to stderr >&2\n\s+exec#\1 │ from exec\n.*\[exec#\1\] → exit 0 · \d+ ms\n\s+exec#\1 ! to stderr/,
  );
  expect(result.attachments.find((a) => a.name === 'transcript: local')?.contentType).toBe('text/plain');
});

test('a secret expect response is masked in the transcript, steps and errors', async ({ runInlineTest }) => {
  // The secret comes from the environment, as in real suites, so the test source never shows it.
  const run = await runInlineTest(
    {
      'lab.config.ts': LAB,
      'a.spec.ts': `
        import { test, expect, secret } from 'labwright';
        const pw = process.env.LW_TEST_SECRET!;
        test('secret', async ({ dut }) => {
          const r = await dut.run('printf "Password: "; read p; echo "you typed $p"', { expects: [[/Password: $/, secret(pw)]] });
          expect(r).toSucceed();
          expect(r.only.output).toContain(pw); // the result itself keeps what the program printed
          await dut.send("echo '" + pw + "' again\\n");
          await dut.expect('again');
          expect(await dut.run('false # ' + pw)).toSucceed();
        });
      `,
    },
    { env: { LW_TEST_SECRET: 'Tr0ub4dor&3' } },
  );
  expect(run.exitCode).toBe(1);
  const result = resultOf(run.report!, 'secret');
  const transcript = inlineAttachment(result, 'transcript: local');
  expect(transcript).toContain('» sent ******');
  expect(transcript).toContain('you typed ******');
  expect(transcript).toContain('│ ****** again');
  expect(transcript).not.toContain('Tr0ub4dor');
  expect(stepTitles(result.steps)).toContain('local: false # ******');
  expect(stepTitles(result.steps).join('\n')).not.toContain('Tr0ub4dor');
  expect(result.error?.message).toContain('local $ false # ******');
  expect(JSON.stringify(result.errors)).not.toContain('Tr0ub4dor');
});

test('a failing command fails the test with its exit code, command and output', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('fails', async ({ dut }) => {
        expect(await dut.run('echo "about to fail"; exit_with() { return 3; }; exit_with')).toSucceed();
      });
      test('exit code matcher', async ({ dut }) => {
        expect(await dut.run('sh -c "exit 4"')).toHaveExitCode(5);
      });
    `,
  });
  expect(run.exitCode).toBe(1);
  const failed = resultOf(run.report!, 'fails');
  expect(failed.status).toBe('failed');
  expect(failed.error?.message).toMatch(/expected every command to succeed; 1 did not/);
  expect(failed.error?.message).toMatch(/status: failed, exit code: 3/);
  expect(failed.error?.message).toContain('about to fail');
  expect(inlineAttachment(failed, 'transcript: local')).toMatch(/→ exit 3 ·/);
  const code = resultOf(run.report!, 'exit code matcher');
  expect(code.error?.message).toMatch(/expected exit code 5, got 4/);
});

test('named sessions opened in a test are closed at its end; the host lives on for the worker', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      import { writeFileSync, readFileSync } from 'node:fs';
      test.describe.configure({ mode: 'serial' });
      test('opens', async ({ host }) => {
        const local = await host('local');
        const monitor = await local.openSession('monitor');
        writeFileSync('pids.json', JSON.stringify({
          monitor: (await monitor.run('echo $$')).only.output.trim(),
          main: (await local.run('echo $$')).only.output.trim(),
        }));
      });
      test('checks', async ({ host }) => {
        const pids = JSON.parse(readFileSync('pids.json', 'utf8'));
        const local = await host('local');
        expect(await local.exec('kill -0 ' + pids.monitor)).toHaveExitCode(1);
        expect((await local.run('echo $$')).only.output.trim()).toBe(pids.main);
        const again = await local.openSession('monitor');
        expect((await again.run('echo $$')).only.output.trim()).not.toBe(pids.monitor);
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
  expect(inlineAttachment(resultOf(run.report!, 'opens'), 'transcript: local')).toContain('[monitor] · local session opened');
});

test('option fixtures choose the lab file, default host and command timeout per project', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'labs/other.config.ts': `
      import { defineLab } from 'labwright';
      export default defineLab({ local: { tags: ['from-other'] } });
    `,
    'playwright.config.ts': `
      import { defineConfig } from '@playwright/test';
      export default defineConfig({
        workers: 1,
        reporter: [['json', { outputFile: 'report.json' }]],
        projects: [{ name: 'p', use: { labFile: 'labs/other.config.ts', defaultHost: 'local', commandTimeout: 700 } }],
      });
    `,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('options', async ({ dut, lab }) => {
        expect(dut.name).toBe('local');
        expect(lab.config.local.tags).toEqual(['from-other']);
        expect(dut.commandTimeout).toBe(700);
        const r = await dut.run('sleep 5');
        expect(r.only.timedOut).toBe(true);
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
});

test('the lab file can be chosen with LABWRIGHT_LAB', async ({ runInlineTest }) => {
  const run = await runInlineTest(
    {
      'env.lab.ts': `
        import { defineLab } from 'labwright';
        export default defineLab({ local: { tags: ['from-env'] } });
      `,
      'a.spec.ts': `
        import { test, expect } from 'labwright';
        test('env', async ({ lab }) => { expect(lab.config.local.tags).toEqual(['from-env']); });
      `,
    },
    { env: { LABWRIGHT_LAB: 'env.lab.ts' } },
  );
  expect(run.exitCode, run.output).toBe(0);
});

test('the lab is loaded lazily: tests that use no host do not need it', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('no lab needed', async () => { expect(1).toBe(1); });
      test('lab needed', async ({ host }) => { await host('local'); });
    `,
  });
  expect(resultOf(run.report!, 'no lab needed').status).toBe('passed');
  const needed = resultOf(run.report!, 'lab needed');
  expect(needed.status).toBe('failed');
  // Laid out for the report: wrapped at 100 columns.
  expect(needed.error?.message?.replace(/\s+/g, ' ')).toMatch(/lab file .*lab\.config\.ts does not exist; create it with defineLab\(\) or point LABWRIGHT_LAB/);
});

test('a bad config fails before any test runs, through the global setup', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'lab.config.ts': `
      import { defineLab } from 'labwright';
      export default defineLab({ hosts: { dut1: { address: '10.0.0.5', users: { root: {} }, ssh: { port: 'twenty-two' } } } });
    `,
    'playwright.config.ts': `
      import { defineConfig } from '@playwright/test';
      export default defineConfig({ globalSetup: ${JSON.stringify(new URL('../../src/playwright/globalSetup.ts', import.meta.url).pathname)}, reporter: [['json', { outputFile: 'report.json' }]] });
    `,
    'a.spec.ts': `
      import { test } from 'labwright';
      import { writeFileSync } from 'node:fs';
      test('must not run', async () => { writeFileSync('ran', 'yes'); });
    `,
  });
  expect(run.exitCode).toBe(1);
  expect(run.output).toContain('Invalid lab configuration');
  expect(run.output).toContain('host "dut1" → ssh.port: expected number, got "twenty-two"');
  const { existsSync } = await import('node:fs');
  expect(existsSync(`${run.dir}/ran`)).toBe(false);
});

test('exclusive() gives tests that share a host a Playwright lock', async ({ runInlineTest }) => {
  const suite = (details: string) => ({
    'lab.config.ts': LAB,
    'playwright.config.ts': `
      import { defineConfig } from '@playwright/test';
      export default defineConfig({ workers: 2, fullyParallel: true, reporter: [['json', { outputFile: 'report.json' }]] });
    `,
    'a.spec.ts': `
      import { test, expect, exclusive } from 'labwright';
      import { appendFileSync } from 'node:fs';
      for (const i of [1, 2, 3, 4]) {
        test('t' + i, ${details}, async ({ dut }) => {
          appendFileSync('events.log', 'start\\n');
          expect(await dut.exec('sleep 1.5')).toSucceed();
          appendFileSync('events.log', 'end\\n');
        });
      }
    `,
  });
  const { readFileSync } = await import('node:fs');
  const events = (dir: string) => readFileSync(`${dir}/events.log`, 'utf8').trim().split('\n');

  // Control: without the lock, two workers overlap (so the probe can see an overlap).
  const free = await runInlineTest(suite('{}'));
  expect(free.exitCode, free.output).toBe(0);
  expect(events(free.dir).join(' ')).toContain('start start');

  const locked = await runInlineTest(suite("exclusive('local')"));
  expect(locked.exitCode, locked.output).toBe(0);
  expect(events(locked.dir)).toEqual(['start', 'end', 'start', 'end', 'start', 'end', 'start', 'end']);
});

test('the remote() fixture refuses the runner with a clear message', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('remote local', async ({ remote }) => {
        await expect(remote('local')).rejects.toThrow('"local" is the runner, not a remote host.');
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
});
