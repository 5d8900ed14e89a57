/**
 * Three `playwright test --shard=i/3` runners (two workers each) sharing two devices through
 * the lease store: every device records who held it when, no two holders overlap, every test
 * passes, and a test that waited says so in its transcript. Once with PostgreSQL, once with
 * the embedded store (all runners on this machine).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { allTests, inlineAttachment, type InlineRun, runInlineTest } from '../helpers/inlineTest.js';
import { expect, storeKinds, test } from '../helpers/leases.js';

const SHARDS = 3;

const files = {
  'lab.config.ts': `
    import { defineLab } from 'labwright';
    const device = { address: '192.0.2.1', users: { lab: {} }, tags: ['shared'] };
    export default defineLab({ hosts: { 'dev-a': device, 'dev-b': device }, leases: { ttl: 3000 } });
  `,
  'playwright.config.ts': `
    import { defineConfig } from '@playwright/test';
    export default defineConfig({
      workers: 2,
      fullyParallel: true,
      timeout: 60_000,
      reporter: [['json', { outputFile: 'report.json' }]],
      projects: [{ name: 'rack', use: { pool: { tags: ['shared'] } } }],
    });
  `,
  // Each test records its hold in the device's directory; mkdir of "busy" fails if someone else is inside.
  'record.ts': `
    import { appendFileSync, mkdirSync, rmdirSync } from 'node:fs';
    import path from 'node:path';
    import type { TestInfo } from '@playwright/test';
    export async function hold(device: string, token: number, info: TestInfo, body: () => Promise<void>) {
      const dir = path.join(process.env.RECORD_DIR!, device);
      mkdirSync(dir, { recursive: true });
      mkdirSync(path.join(dir, 'busy'));
      const start = Date.now();
      try {
        await body();
      } finally {
        const end = Date.now();
        rmdirSync(path.join(dir, 'busy'));
        appendFileSync(path.join(dir, 'log.jsonl'), JSON.stringify({ device, token, start, end, shard: process.env.SHARD, title: info.title }) + '\\n');
      }
    }
  `,
  'pool.spec.ts': `
    import { test, expect } from 'labwright';
    import { hold } from './record';
    for (let i = 1; i <= 12; i++) {
      test('pool ' + String(i).padStart(2, '0'), async ({ dut, lab }) => {
        await hold(dut.name, dut.leaseToken!, test.info(), async () => {
          if (i === 1) {
            // Keep the device until somebody queues behind it, so that waiting certainly happens.
            await expect.poll(async () => (await lab.leases.snapshot()).waiters.length, { timeout: 30_000 }).toBeGreaterThan(0);
          }
          await new Promise((resolve) => setTimeout(resolve, 150));
        });
      });
    }
  `,
  'exclusive.spec.ts': `
    import { test, exclusive } from 'labwright';
    import { hold } from './record';
    for (const i of [1, 2, 3]) {
      test('exclusive dev-a ' + i, exclusive('dev-a'), async ({ host }) => {
        const dev = await host('dev-a');
        await hold(dev.name, dev.leaseToken!, test.info(), () => new Promise((resolve) => setTimeout(resolve, 150)));
      });
    }
  `,
};

interface Hold {
  device: string;
  token: number;
  start: number;
  end: number;
  shard: string;
  title: string;
}

for (const kind of storeKinds) {
  test(`${kind} store: three shard runners share two devices without overlap`, async ({ newStore }) => {
    test.setTimeout(240_000);
    const store = await newStore(kind);
    const recordDir = path.join(test.info().outputDir, 'devices');
    mkdirSync(recordDir, { recursive: true });
    const runs: InlineRun[] = await Promise.all(
      Array.from({ length: SHARDS }, (_, i) =>
        runInlineTest(files, {
          args: [`--shard=${i + 1}/${SHARDS}`],
          env: { LABWRIGHT_LEASES: store, RECORD_DIR: recordDir, SHARD: String(i + 1) },
          timeoutMs: 180_000,
        }),
      ),
    );
    for (const run of runs) {
      expect(run.exitCode, run.output).toBe(0);
      expect(run.report!.stats.unexpected).toBe(0);
    }
    expect(runs.reduce((sum, run) => sum + run.report!.stats.expected, 0)).toBe(15);

    const holds: Hold[] = ['dev-a', 'dev-b'].flatMap((device) => {
      const log = path.join(recordDir, device, 'log.jsonl');
      return existsSync(log)
        ? readFileSync(log, 'utf8')
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as Hold)
        : [];
    });
    expect(holds).toHaveLength(15);
    expect(new Set(holds.map((h) => h.shard))).toEqual(new Set(['1', '2', '3']));
    expect(new Set(holds.map((h) => h.device))).toEqual(new Set(['dev-a', 'dev-b']));
    for (const device of ['dev-a', 'dev-b']) {
      const ordered = holds.filter((h) => h.device === device).sort((a, b) => a.start - b.start);
      for (let i = 1; i < ordered.length; i++) {
        const [before, after] = [ordered[i - 1]!, ordered[i]!];
        expect(
          after.start,
          `${device}: "${after.title}" (shard ${after.shard}) began while "${before.title}" (shard ${before.shard}) held it`,
        ).toBeGreaterThanOrEqual(before.end);
        expect(after.token, `${device}: fencing tokens grow from holder to holder`).toBeGreaterThan(before.token);
      }
    }

    // Somebody waited, and its transcript says for what and behind whom.
    const waited = runs
      .flatMap((run) =>
        allTests(run.report!).flatMap((t) => {
          const result = t.results[0]!;
          return result.attachments.filter((a) => a.name.startsWith('transcript: dev-')).map((a) => inlineAttachment(result, a.name));
        }),
      )
      .filter((transcript) => transcript.includes('[lease] · waiting'));
    expect(waited.length).toBeGreaterThan(0);
    expect(waited[0]).toMatch(
      /\[lease\] · waiting for (tags \[shared\]|dev-a): number \d+ of \d+ in the queue; dev-\w held by pid \d+ on .+ for "\[rack\] .+\(shard \d\/3\)" since .+ \(token \d+\)/,
    );
    expect(waited[0]).toMatch(/\[lease\] · acquired dev-\w \(token \d+\) from the .+ after waiting/);
    expect(waited[0]).toMatch(/\[lease\] · released dev-\w \(token \d+\)/);
  });
}
