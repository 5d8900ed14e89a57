/**
 * The report tells the story: each command's step holds its outcome and output and is
 * marked failed when the command failed or timed out; labwright errors are laid out as
 * cause and what to do within 100 columns; logs are collected on a failing test only;
 * a lab config error is reported once per run. Inline Playwright runs, JSON report.
 */
import type { JSONReportTestStep } from '@playwright/test/reporter';

import { allTests, expect, inlineAttachment, resultOf, test } from '../helpers/inlineTest.js';
import { closedPort } from '../helpers/net.js';

function findStep(steps: readonly JSONReportTestStep[] | undefined, title: string): JSONReportTestStep | undefined {
  for (const step of steps ?? []) {
    if (step.title === title) return step;
    const inner = findStep(step.steps, title);
    if (inner) return inner;
  }
  return undefined;
}

const LAB = `
import { defineLab } from 'labwright';
export default defineLab({ local: { commandTimeout: 15_000 } });
`;

test('a command step holds its outcome and output; failed and timed-out commands are marked, the test goes on', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('story', async ({ dut }) => {
        await dut.run('echo one; echo two');
        const failed = await dut.run('echo "about to fail"; sh -c "exit 3"');
        expect(failed.only.exitCode).toBe(3);
        const slow = await dut.run('echo sleeping; sleep 20', { timeout: 700 });
        expect(slow.only.timedOut).toBe(true);
        await dut.run('seq 1 50');
        await dut.run('seq 1 50; false');
        await dut.exec('echo out; echo err >&2; exit 4');
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
  const result = resultOf(run.report!, 'story');
  expect(result.status).toBe('passed');

  const ok = findStep(result.steps, 'local: echo one; echo two')!;
  expect(ok.error).toBeUndefined();
  expect(ok.steps!.map((s) => s.title)).toEqual([expect.stringMatching(/^→ exit 0 · \d+ ms$/), '│ one', '│ two']);

  const failed = findStep(result.steps, 'local: echo "about to fail"; sh -c "exit 3"')!;
  expect(failed.error?.message).toMatch(/^CommandFailed: → exit 3 · \d+ ms$/);
  expect(failed.steps!.map((s) => s.title)).toEqual([expect.stringMatching(/^→ exit 3 · /), '│ about to fail']);
  expect(failed.steps![0]!.error).toBeDefined();

  const slow = findStep(result.steps, 'local: echo sleeping; sleep 20')!;
  expect(slow.error?.message).toMatch(/^CommandFailed: → TIMED OUT after \d+ ms/);
  expect(slow.steps!.map((s) => s.title)).toContain('│ sleeping');

  // A command that succeeded shows its last 5 lines, one that failed its last 20.
  const long = findStep(result.steps, 'local: seq 1 50')!;
  expect(long.steps!.map((s) => s.title)).toEqual([
    expect.stringMatching(/^→ exit 0/),
    '… 45 earlier line(s) in the attachment "transcript: local"',
    ...Array.from({ length: 5 }, (_, i) => `│ ${46 + i}`),
  ]);
  const longFailed = findStep(result.steps, 'local: seq 1 50; false')!;
  expect(longFailed.steps!.map((s) => s.title)).toEqual([
    expect.stringMatching(/^→ exit 1/),
    '… 30 earlier line(s) in the attachment "transcript: local"',
    ...Array.from({ length: 20 }, (_, i) => `│ ${31 + i}`),
  ]);

  const exec = findStep(result.steps, 'local/exec: echo out; echo err >&2; exit 4')!;
  expect(exec.error?.message).toMatch(/^CommandFailed: → exit 4/);
  expect(exec.steps!.map((s) => s.title)).toEqual([expect.stringMatching(/^→ exit 4/), '│ out', '! err']);
});

test('concurrent exec output is attributed to its call in the transcript', async ({ runInlineTest }) => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test } from 'labwright';
      test('concurrent', async ({ dut }) => {
        await Promise.all([1, 2, 3].map((i) => dut.exec('for n in 1 2 3; do echo call' + i + '-line$n; sleep 0.05; done')));
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
  const transcript = inlineAttachment(resultOf(run.report!, 'concurrent'), 'transcript: local');
  const starts = new Map<string, string>();
  for (const match of transcript.matchAll(/\[exec#(\d+)\] \$ for n in 1 2 3; do echo (call\d)-line/g)) starts.set(match[2]!, match[1]!);
  expect(starts.size).toBe(3);
  // The lines interleave, and each carries the id of the call that printed it.
  const lines = [...transcript.matchAll(/^\s+exec#(\d+) │ (call\d)-line\d$/gm)];
  expect(lines).toHaveLength(9);
  for (const [, id, call] of lines) expect(id).toBe(starts.get(call!));
});

test('labwright errors are laid out as cause and what to do, every line within 100 columns', async ({ runInlineTest }) => {
  const port = await closedPort();
  const run = await runInlineTest({
    'lab.config.ts': `
      import { defineLab } from 'labwright';
      export default defineLab({ hosts: { board: { address: '127.0.0.1', ssh: { port: ${port}, connectAttempts: 1 }, users: { root: { password: 'pw-for-layout' } }, description: 'a board whose sshd is not running, to show how errors are laid out' } } });
    `,
    'a.spec.ts': `
      import { test } from 'labwright';
      test('unreachable', async ({ host }) => { await (await host('board')).run('true'); });
      test('unknown host', async ({ host }) => { await host('bord'); });
    `,
  });
  const unreachable = resultOf(run.report!, 'unreachable').error!.message!;
  expect(unreachable).toMatch(/^ConnectionError: board \(ssh\): cannot connect to 127\.0\.0\.1:\d+: connection refused\.\n\nWhat to do: Nothing listens there/);
  const unknown = resultOf(run.report!, 'unknown host').error!.message!;
  // Continuation lines are indented by two spaces.
  expect(unknown.replace(/\n {2}/g, ' ')).toMatch(
    /^LabwrightError: no host named "bord" in .*lab\.config\.ts; did you mean "board"\?[\s\S]*\n\nWhat to do: Add it to the lab config or fix the name\.$/,
  );
  // A single word longer than a line (the lab file's path here) is kept whole, so it can be copied.
  for (const message of [unreachable, unknown]) {
    for (const line of message.split('\n')) if (/\S\s+\S/.test(line.trim())) expect(line.length, line).toBeLessThanOrEqual(100);
  }
});

test('logs are collected from the hosts a failing test used, bounded and masked, never failing it twice; not on a pass or an opt-out', async ({
  runInlineTest,
}) => {
  const port = await closedPort();
  const run = await runInlineTest(
    {
      'lab.config.ts': `
        import { defineLab, env } from 'labwright';
        export default defineLab({
          defaults: { logs: { timeout: 1_000 } },
          local: {
            logs: {
              commands: ['echo "kernel: $LW_APP_STATE"; echo "pw is $LW_LOG_SECRET"', 'echo hung; sleep 30', 'echo err-text >&2; exit 5'],
              files: ['app.log', 'missing.log'],
            },
          },
          hosts: {
            board: { address: '127.0.0.1', ssh: { port: ${port}, connectAttempts: 1 }, users: { root: { password: env('LW_LOG_SECRET') } }, logs: { commands: ['dmesg'] } },
          },
        });
      `,
      'a.spec.ts': `
        import { test, expect, noLogs } from 'labwright';
        import { writeFileSync } from 'node:fs';
        test('fails', async ({ host }) => {
          writeFileSync('app.log', 'x'.repeat(300_000) + '\\nlast app line\\n');
          await (await host('local')).run('true');
          await (await host('board')).run('true').catch(() => undefined);
          expect(1, 'the original failure').toBe(2);
        });
        test('passes', async ({ dut }) => { await dut.run('true'); });
        test('opts out', noLogs, async ({ dut }) => { await dut.run('true'); expect(1).toBe(2); });
        test.describe(() => {
          test.use({ collectLogs: false });
          test('opts out by option', async ({ dut }) => { await dut.run('true'); expect(1).toBe(2); });
        });
      `,
    },
    { env: { LW_LOG_SECRET: 'Log-S3cret-value', LW_APP_STATE: 'panic-in-driver' } },
  );
  if (!allTests(run.report!).length) throw new Error(run.output);
  const failed = resultOf(run.report!, 'fails');
  expect(failed.errors, run.output).toHaveLength(1);
  expect(failed.error?.message).toContain('the original failure');
  const logs = inlineAttachment(failed, 'logs: local');
  expect(logs).toMatch(/^\$ echo "kernel: \$LW_APP_STATE"; echo "pw is \$LW_LOG_SECRET" {2}→ exit 0 · \d+ ms\nkernel: panic-in-driver\npw is \*{6}\n/m);
  expect(logs).toMatch(/^\$ echo hung; sleep 30 {2}→ TIMED OUT after 1\.00 s/m);
  expect(logs).toMatch(/^\$ echo err-text >&2; exit 5 {2}→ exit 5 · .*\n\n\[stderr\]\nerr-text/m);
  expect(logs).toMatch(/^== app\.log {2}→ 300015 bytes, the last 262144 shown · \d+ ms\nx{262129}\nlast app line\n/m);
  expect(logs).toMatch(/^== missing\.log {2}→ exit [12] .*\n+\[stderr\]\n.*missing\.log/m);
  expect(logs).not.toContain('Log-S3cret-value');
  const board = inlineAttachment(failed, 'logs: board');
  expect(board).toMatch(/^\$ dmesg {2}→ not collected: board \(ssh\): cannot connect to 127\.0\.0\.1:\d+: connection refused/m);

  expect(resultOf(run.report!, 'passes').status).toBe('passed');
  for (const title of ['passes', 'opts out', 'opts out by option']) {
    expect(
      resultOf(run.report!, title)
        .attachments.map((a) => a.name)
        .filter((name) => name.startsWith('logs')),
    ).toEqual([]);
  }
  expect(JSON.stringify(run.report)).not.toContain('Log-S3cret-value');
});

test('without the global setup a lab config error is reported once, the other tests are skipped naming it', async ({ runInlineTest }) => {
  const run = await runInlineTest(
    {
      'lab.config.ts': `import { defineLab } from 'labwright'; export default defineLab({ hosts: { dut: { adress: '10.0.0.1' } } } as never);`,
      'a.spec.ts': `
        import { test } from 'labwright';
        for (const i of [1, 2, 3, 4]) test('a' + i, async ({ host }) => { await host('local'); });
        test('no lab needed', async () => {});
      `,
      'b.spec.ts': `
        import { test } from 'labwright';
        for (const i of [1, 2]) test('b' + i, async ({ dut }) => { await dut.run('true'); });
      `,
    },
    { args: ['--workers=2'] },
  );
  expect(run.exitCode).toBe(1);
  const tests = allTests(run.report!);
  const failed = tests.filter((t) => t.results[0]!.status === 'failed');
  expect(failed).toHaveLength(1);
  const message = failed[0]!.results[0]!.error!.message!;
  expect(message).toMatch(/^ConfigError: Invalid lab configuration in\s+\S*lab\.config\.ts:\n {2}- host "dut" → /);
  expect(message).toMatch(/\n {2}- host "dut" → adress: unknown field \(did you mean "address"\?\)/);
  const reporter = (failed[0] as unknown as { title: string }).title;
  const skipped = tests.filter((t) => t.results[0]!.status === 'skipped');
  expect(skipped).toHaveLength(5);
  for (const t of skipped) expect(t.annotations[0]?.description).toMatch(new RegExp(`the lab configuration is invalid; the test ".*${reporter}" reports why`));
  expect(resultOf(run.report!, 'no lab needed').status).toBe('passed');
});
