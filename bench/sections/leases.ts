/**
 * Leases: acquire and release latency, throughput of many runners sharing a few devices, and
 * the time from a holder's death (SIGKILL) to the device's next lease, on a throwaway
 * PostgreSQL server and on the embedded store. References: one `SELECT 1` round trip to the
 * same server (what an operation costs at least), and the TTL (the bound on the takeover).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { startPostgres } from '../../fixtures/lab/postgres.js';
import { defineLab } from '../../src/config/defineLab.js';
import { Lab } from '../../src/host/lab.js';
import { median, type Row, row, timeRuns } from '../stats.js';

const DEVICES = ['d1', 'd2', 'd3', 'd4', 'd5'];
const TTL = 3_000;
const holderScript = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'leaseHolder.ts');

function labOn(store: string, ttl = 15_000): Lab {
  const hosts = Object.fromEntries(DEVICES.map((name) => [name, { address: '192.0.2.1', users: { lab: {} }, tags: ['rack'] }]));
  return new Lab(defineLab({ hosts, leases: { store, ttl } }));
}

/** Median acquire and release times (ms) of one device, one request at a time. */
async function latency(store: string): Promise<{ acquire: number; release: number }> {
  const lab = labOn(store);
  const acquire: number[] = [];
  const release: number[] = [];
  try {
    await timeRuns(200, async () => {
      let started = performance.now();
      const held = await lab.lease('d1');
      acquire.push(performance.now() - started);
      started = performance.now();
      await held.release();
      release.push(performance.now() - started);
    });
  } finally {
    await lab.close();
  }
  return { acquire: median(acquire.slice(2)), release: median(release.slice(2)) };
}

/** Acquire-release cycles per second: `runners` labs (own connections) sharing the 5 devices by tag. */
async function throughput(store: string, runners: number, total: number): Promise<number> {
  const labs = Array.from({ length: runners }, () => labOn(store));
  let next = 0;
  try {
    await Promise.all(labs.map((lab) => lab.lease('d1').then((held) => held.release()))); // connect outside the clock
    const started = performance.now();
    await Promise.all(
      labs.map(async (lab) => {
        while (next < total) {
          next++;
          const held = await lab.lease({ tags: ['rack'] }, { timeout: 120_000 });
          await held.release();
        }
      }),
    );
    return total / ((performance.now() - started) / 1000);
  } finally {
    await Promise.all(labs.map((lab) => lab.close()));
  }
}

/**
 * SIGKILL of a process holding d1, at a random point of its heartbeat cycle: the time (ms) until
 * a waiter gets d1, and how much of it came after the lease's expiry (the wake-up delay).
 */
async function takeover(store: string): Promise<{ total: number; afterExpiry: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', holderScript, store, 'd1', String(TTL)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lab = labOn(store, TTL);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the holder process did not report its lease within 30 s')), 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('held')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`the holder process exited (${code}) before holding its lease`)));
    });
    const waiting = lab.lease('d1', { timeout: TTL * 3 });
    while ((await lab.leases.snapshot()).waiters.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, Math.random() * (TTL / 3)));
    const snapshot = await lab.leases.snapshot();
    const remaining = snapshot.holders[0]!.expiresAt - snapshot.time;
    const killed = performance.now();
    child.kill('SIGKILL');
    const held = await waiting;
    const total = performance.now() - killed;
    await held.release();
    return { total, afterExpiry: total - remaining };
  } finally {
    child.kill('SIGKILL');
    await lab.close();
  }
}

export async function leasesSection(): Promise<Row[]> {
  const server = await startPostgres();
  const directory = mkdtempSync(path.join(os.tmpdir(), 'lw-bench-leases-'));
  const rows: Row[] = [];
  try {
    const client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    const roundTrip = median(await timeRuns(200, () => client.query('SELECT 1')));
    await client.end();
    const stores: [string, string, number | undefined][] = [
      ['PostgreSQL', await server.createDatabase(), roundTrip],
      ['embedded', directory, undefined],
    ];
    for (const [name, store, reference] of stores) {
      const { acquire, release } = await latency(store);
      const cycles = await throughput(store, 10, 500);
      const deaths = [await takeover(store), await takeover(store), await takeover(store)];
      const death = median(deaths.map((d) => d.total));
      const late = median(deaths.map((d) => d.afterExpiry));
      console.log(
        `leases (${name}): acquire ${acquire.toFixed(2)} ms, release ${release.toFixed(2)} ms, ${cycles.toFixed(0)} cycles/s with 10 runners on 5 devices, ` +
          `holder death to next lease ${death.toFixed(0)} ms (TTL ${TTL} ms; ${late.toFixed(0)} ms of it after the expiry)`,
      );
      const refName = reference === undefined ? undefined : 'SELECT 1 round trip';
      rows.push(
        row('leases', `${name}: acquire a free device`, 'ms', acquire, reference, refName),
        row('leases', `${name}: release`, 'ms', release, reference, refName),
        row('leases', `${name}: acquire+release, 10 runners on 5 devices`, 'op/s', cycles),
        row('leases', `${name}: holder SIGKILLed → device leased again`, 'ms', death, TTL, 'TTL (the bound)', '>= 1x'),
        row('leases', `${name}: of which after the lease expired`, 'ms', late),
      );
    }
  } finally {
    await server.destroy();
    rmSync(directory, { recursive: true, force: true });
  }
  return rows;
}
