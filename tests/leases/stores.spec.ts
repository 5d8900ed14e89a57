/**
 * Leases on a real PostgreSQL server and on the embedded store: the same behaviour on both.
 * Devices are placeholder hosts (leased, never connected to), except `local`, which runs
 * real commands where fencing is checked.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { listLeases } from '../../src/lease/list.js';
import { LeaseError } from '../../src/util/errors.js';
import { expect, labWith, storeKinds, test, untilQueued } from '../helpers/leases.js';

/** Blocks this process's event loop, as a frozen or overloaded runner would be: no heartbeat can run. */
function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

for (const kind of storeKinds) {
  test.describe(`${kind} store`, () => {
    test('50 concurrent requests on 5 devices are all served, never two holders of one device at once', async ({ newStore }) => {
      const store = await newStore(kind);
      const devices = Object.fromEntries(['d1', 'd2', 'd3', 'd4', 'd5'].map((name) => [name, ['rack']]));
      // Ten labs: ten clients with their own store connections, as ten runners would have.
      const labs = Array.from({ length: 10 }, () => labWith(store, devices, { ttl: 5_000 }));
      const holderOf = new Map<string, number>();
      const overlaps: string[] = [];
      const grants: { device: string; token: number }[] = [];
      try {
        await Promise.all(
          Array.from({ length: 50 }, async (_, i) => {
            const held = await labs[i % labs.length]!.lease({ tags: ['rack'] }, { timeout: 60_000, purpose: `request ${i}` });
            const device = held.host.name;
            if (holderOf.has(device)) overlaps.push(`${device}: request ${i} while request ${holderOf.get(device)} holds it`);
            holderOf.set(device, i);
            grants.push({ device, token: held.token });
            await delay(2 + (i % 5) * 4);
            holderOf.delete(device);
            await held.release();
          }),
        );
      } finally {
        await Promise.all(labs.map((lab) => lab.close()));
      }
      expect(overlaps).toEqual([]);
      expect(grants).toHaveLength(50);
      expect(new Set(grants.map((g) => g.device))).toEqual(new Set(Object.keys(devices)));
      for (const device of Object.keys(devices)) {
        const tokens = grants.filter((g) => g.device === device).map((g) => g.token);
        expect(tokens, `fencing tokens of ${device} in grant order`).toEqual([...tokens].sort((a, b) => a - b));
      }
      expect(await listLeases(labs[0]!.config)).toMatchObject({ holders: [], waiters: [] });
    });

    test('tags pick matching devices; the queue serves a higher priority first, then in order of arrival; holders and waiters can be listed', async ({
      newStore,
    }) => {
      const store = await newStore(kind);
      const devices = { a: ['arm64', 'rev-b'], b: ['arm64'], c: ['x86'] };
      const holderLab = labWith(store, devices);
      const waiterLab = labWith(store, devices);
      try {
        const x86 = await holderLab.lease({ tags: ['x86'] }, { purpose: 'x86 test' });
        const revB = await holderLab.lease({ tags: ['arm64', 'rev-b'] }, { purpose: 'rev-b test' });
        const arm = await holderLab.lease({ tags: ['arm64'] }, { purpose: 'arm test' });
        expect([x86.host.name, revB.host.name, arm.host.name]).toEqual(['c', 'a', 'b']);

        const served: string[] = [];
        const ask = (purpose: string, priority = 0) =>
          waiterLab.lease({ tags: ['arm64'] }, { purpose, priority, timeout: 30_000 }).then((held) => {
            served.push(purpose);
            return held;
          });
        const low1 = ask('low 1');
        await untilQueued(holderLab, 1);
        const low2 = ask('low 2');
        await untilQueued(holderLab, 2);
        const high = ask('high', 5);
        await untilQueued(holderLab, 3);

        const snapshot = await listLeases(holderLab.config);
        expect(snapshot.holders.map((h) => [h.device, h.holder.purpose, h.holder.pid])).toEqual([
          ['a', 'rev-b test', process.pid],
          ['b', 'arm test', process.pid],
          ['c', 'x86 test', process.pid],
        ]);
        for (const h of snapshot.holders) expect(h.expiresAt).toBeGreaterThan(h.since);
        expect(snapshot.waiters.map((w) => [w.position, w.holder.purpose, w.priority, w.selector])).toEqual([
          [1, 'high', 5, 'tags [arm64]'],
          [2, 'low 1', 0, 'tags [arm64]'],
          [3, 'low 2', 0, 'tags [arm64]'],
        ]);

        await arm.release();
        const first = await high;
        expect(first.host.name).toBe('b');
        await first.release();
        await (await low1).release();
        await (await low2).release();
        expect(served).toEqual(['high', 'low 1', 'low 2']);
        await x86.release();
        await revB.release();
      } finally {
        await holderLab.close();
        await waiterLab.close();
      }
    });

    test('a holder whose lease expired is told: the next call on the host fails clearly, and its release frees nothing of the next holder', async ({
      newStore,
    }) => {
      const store = await newStore(kind);
      const frozen = labWith(store, {}, { ttl: 1_000 });
      const other = labWith(store, {}, { ttl: 1_000 });
      try {
        const held = await frozen.lease('local', { purpose: 'frozen test' });
        const local = held.host;
        expect((await local.run('echo before')).ok).toBe(true);
        freeze(1_600);
        const taken = await other.lease('local', { timeout: 10_000, purpose: 'next test' });
        expect(taken.token).toBeGreaterThan(held.token);

        const refusal = await local.run('echo after').then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refusal).toBeInstanceOf(LeaseError);
        expect((refusal as LeaseError).kind).toBe('lost');
        expect((refusal as Error).message).toMatch(
          new RegExp(`^local \\(lease\\): the lease on local \\(token ${held.token}\\) is no longer held: .+ this call was not made`),
        );
        await expect(local.exec('true')).rejects.toThrow(/is no longer held/);
        await expect(local.send('echo typed\n')).rejects.toThrow(/is no longer held/);
        await expect(local.openSession('side')).rejects.toThrow(/is no longer held/);
        mkdirSync(test.info().outputDir, { recursive: true });
        const file = path.join(test.info().outputDir, 'f');
        writeFileSync(file, 'x');
        await expect(local.put(file, `${file}.copy`)).rejects.toThrow(/is no longer held/);
        expect(held.lost).toBeDefined();

        await held.release();
        expect((await other.leases.snapshot()).holders.map((h) => [h.device, h.token])).toEqual([['local', taken.token]]);
        await taken.release();
        // Released, the host is usable again (a new lease or none).
        expect((await local.run('echo again')).ok).toBe(true);
      } finally {
        await frozen.close();
        await other.close();
      }
    });

    test('a lease of several devices is granted at once, shares a token, and releases them together', async ({ newStore }) => {
      const store = await newStore(kind);
      const lab = labWith(store, { a: ['x'], b: ['x'], c: ['y'] });
      const other = labWith(store, { a: ['x'], b: ['x'], c: ['y'] });
      try {
        const blocker = await other.lease('c');
        const both = lab.lease([{ tags: ['x'] }, 'c'], { timeout: 20_000 });
        await untilQueued(lab, 1);
        await blocker.release();
        const held = await both;
        expect(held.hosts.map((h) => h.name).sort()).toEqual(['a', 'c']);
        expect(held.tokenOf('a')).toBe(held.tokenOf('c'));
        await held.release();
        expect((await lab.leases.snapshot()).holders).toEqual([]);
      } finally {
        await lab.close();
        await other.close();
      }
    });
  });
}
