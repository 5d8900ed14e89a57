/** Executor throughput: 1000 trivial commands at concurrency 1, 10 and 100, against ssh -S with the same parallelism. */
import { performance } from 'node:perf_hooks';

import type { Lab } from '../../src/host/lab.js';
import type { OpenSshMaster } from '../openssh.js';
import { type Row, row } from '../stats.js';

/** Runs `total` jobs with at most `concurrency` at once; returns commands per second. */
async function throughput(total: number, concurrency: number, job: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        await job();
      }
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

export async function executorSection(lab: Lab, master: OpenSshMaster, total = 1000): Promise<Row[]> {
  const target = lab.remote('target');
  await target.exec('true');
  const rows: Row[] = [];
  for (const concurrency of [1, 10, 100]) {
    const ours = await throughput(total, concurrency, async () => {
      const r = await target.exec('true', { timeout: 120_000 });
      if (r.exitCode !== 0) throw new Error(`exec failed: ${r.error ?? r.exitCode}`);
    });
    const theirs = await throughput(total, concurrency, () => master.ssh('true'));
    rows.push(
      row(
        'executor',
        `${total} commands at concurrency ${concurrency}`,
        'cmd/s',
        ours,
        theirs,
        'ssh -S cm, same parallelism',
        concurrency === 10 ? '>= 5x' : undefined,
      ),
    );
    console.log(`executor: concurrency ${concurrency}: labwright ${ours.toFixed(0)} cmd/s, OpenSSH ${theirs.toFixed(0)} cmd/s`);
  }
  return rows;
}
