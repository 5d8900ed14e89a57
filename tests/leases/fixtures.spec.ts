/**
 * The lease fixtures in real Playwright runs (embedded store): `lease()` for one or several
 * hosts, a worker-scoped pool, a wait that times out, a lease lost in the middle of a test,
 * and what each of them leaves in the report.
 */
import { allTests, inlineAttachment, resultOf, runInlineTest, stepTitles, unwrapReported } from '../helpers/inlineTest.js';
import { expect, test } from '../helpers/leases.js';

const LAB = `
  import { defineLab } from 'labwright';
  const board = (tags: string[]) => ({ address: '192.0.2.1', users: { lab: {} }, tags });
  export default defineLab({
    hosts: { 'dev-a': board(['board', 'arm64']), 'dev-b': board(['board']), 'dev-c': board(['x86']) },
    leases: { ttl: 1000 },
  });
`;

test('lease() gives one host or several, in order, for the test only', async () => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('one', async ({ lease, lab }) => {
        const dev = await lease({ tags: ['x86'] });
        expect(dev.name).toBe('dev-c');
        expect(dev.leaseToken).toBeGreaterThan(0);
        const [arm, other] = await lease([{ tags: ['arm64'] }, { tags: ['board'] }]);
        expect([arm.name, other.name]).toEqual(['dev-a', 'dev-b']);
        const holders = (await lab.leases.snapshot()).holders;
        expect(holders.map((h) => [h.device, h.holder.purpose])).toEqual([
          ['dev-a', 'a.spec.ts › one'],
          ['dev-b', 'a.spec.ts › one'],
          ['dev-c', 'a.spec.ts › one'],
        ]);
      });
      test('two', async ({ lab }) => {
        expect((await lab.leases.snapshot()).holders).toEqual([]);
        expect(lab.host('dev-c').leaseToken).toBeUndefined();
      });
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
  const result = resultOf(run.report!, 'one');
  expect(stepTitles(result.steps)).toEqual(expect.arrayContaining(['lease tags [x86]', 'lease tags [arm64] + tags [board]']));
  expect(inlineAttachment(result, 'transcript: dev-c')).toMatch(
    /\[lease\] · acquired dev-c \(token \d+\) from the embedded store .*\n.*\[lease\] · released dev-c/,
  );
});

test('a worker-scoped pool, and a worker-scoped lease(), give every test of the worker the same host under one lease', async () => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      import { appendFileSync } from 'node:fs';
      test.use({ pool: { tags: ['board'], scope: 'worker' } });
      for (const i of [1, 2, 3]) {
        test('t' + i, async ({ dut, lab, lease }) => {
          const mine = (await lab.leases.snapshot()).holders.find((h) => h.device === dut.name)!;
          const x86 = await lease({ tags: ['x86'] }, { scope: 'worker' });
          appendFileSync('held.log', dut.name + ' ' + mine.token + ' ' + mine.holder.purpose + ' / ' + x86.name + ' ' + x86.leaseToken + '\\n');
        });
      }
    `,
  });
  expect(run.exitCode, run.output).toBe(0);
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync(`${run.dir}/held.log`, 'utf8').trim().split('\n');
  expect(lines).toHaveLength(3);
  expect(new Set(lines).size).toBe(1);
  expect(lines[0]).toMatch(/^dev-[ab] \d+ worker 0, from test a\.spec\.ts › t1 \/ dev-c \d+$/);
});

test('a wait that runs out fails the test saying for what and behind whom, also in the transcript', async () => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test } from 'labwright';
      import { Lab } from 'labwright/core';
      test('waits in vain', async ({ lease }) => {
        const other = await Lab.load();
        await other.lease('dev-a', { purpose: 'the other holder' });
        try {
          await lease('dev-a', { timeout: 1000 });
        } finally {
          await other.close();
        }
      });
    `,
  });
  expect(run.exitCode).toBe(1);
  const result = resultOf(run.report!, 'waits in vain');
  expect(unwrapReported(result.error?.message)).toMatch(
    /dev-a \(lease\): no device for dev-a within 1.00 s: number 1 of 1 in the queue; dev-a held by pid \d+ on .+ for "the other holder" since .+ \(token \d+\)/,
  );
  expect(unwrapReported(result.error?.message)).toContain('unless renewed. Raise the wait bound');
  const transcript = inlineAttachment(result, 'transcript: dev-a');
  expect(transcript).toMatch(/\[lease\] · waiting for dev-a: number 1 of 1 in the queue; dev-a held by .+"the other holder"/);
  expect(transcript).toMatch(/\[lease\] · failed dev-a \(lease\): no device for dev-a/);
});

test('a lease lost during a test fails the next call on the host, and the transcript says why', async () => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'a.spec.ts': `
      import { test, expect } from 'labwright';
      test('frozen runner', async ({ lease }) => {
        const local = await lease('local');
        expect(await local.run('echo before')).toSucceed();
        // A frozen runner: no heartbeat for 1.6 s with a 1 s TTL.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1600);
        await local.run('echo after');
      });
    `,
  });
  expect(run.exitCode).toBe(1);
  const result = resultOf(run.report!, 'frozen runner');
  expect(unwrapReported(result.error?.message)).toMatch(/local \(lease\): the lease on local \(token \d+\) is no longer held: .+this call was not made/);
  const transcript = inlineAttachment(result, 'transcript: local');
  expect(transcript).toContain('$ echo before');
  expect(transcript).not.toContain('$ echo after');
  expect(transcript).toMatch(/\[lease\] · lost local \(token \d+\): .+further calls on this host fail/);
  expect(transcript).toMatch(/\[lease\] · released local \(token \d+\), which had been lost/);
});

test('a pool naming both tags and a host is refused with what to write', async () => {
  const run = await runInlineTest({
    'lab.config.ts': LAB,
    'playwright.config.ts': `
      import { defineConfig } from '@playwright/test';
      export default defineConfig({ reporter: [['json', { outputFile: 'report.json' }]], projects: [{ name: 'bad', use: { pool: { tags: ['board'], host: 'dev-a' } } }] });
    `,
    'a.spec.ts': `
      import { test } from 'labwright';
      test('uses dut', async ({ dut }) => {});
    `,
  });
  expect(run.exitCode).toBe(1);
  const [only] = allTests(run.report!);
  expect(only!.results[0]!.error?.message).toContain('lease: the pool option of project "bad" must name either tags or a host, not both.');
});
