/**
 * `labwright leases` as a subprocess against a real store of each kind: the holders (device,
 * machine, process, purpose, token, expiry) and the queue in serving order, as text and JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { runCliProcess } from '../helpers/cli.js';
import { expect, labWith, storeKinds, test, untilQueued } from '../helpers/leases.js';

for (const kind of storeKinds) {
  test(`${kind} store: labwright leases shows who holds which device and who waits, in serving order`, async ({ newStore }) => {
    const store = await newStore(kind);
    const devices = { dut1: ['arm64'], dut2: ['x86'] };
    const holder = labWith(store, devices, { ttl: 30_000 });
    const waiter = labWith(store, devices, { ttl: 30_000 });
    mkdirSync(test.info().outputDir, { recursive: true });
    const file = path.join(test.info().outputDir, 'lab.json');
    writeFileSync(file, JSON.stringify({ hosts: { dut1: { address: '192.0.2.1', users: { lab: {} }, tags: ['arm64'] } }, leases: { store } }));
    try {
      const empty = await runCliProcess(['-l', file, 'leases']);
      expect(empty.code, empty.stderr).toBe(0);
      expect(empty.stdout).toMatch(/^store: .+\nheld: nothing\nwaiting: nobody\n$/);

      const held = await holder.lease('dut1', { purpose: 'flash.spec.ts › flashes' });
      const queued = waiter.lease({ tags: ['arm64'] }, { timeout: 60_000, priority: 3, purpose: 'boot.spec.ts › boots' });
      await untilQueued(holder, 1);

      const shown = await runCliProcess(['-l', file, 'leases']);
      expect(shown.code, shown.stderr).toBe(0);
      const lines = shown.stdout.split('\n');
      expect(lines[1]).toBe('held (1):');
      expect(lines[2]).toMatch(
        new RegExp(
          `^ {2}dut1 held by pid ${process.pid} on ${os.hostname()}.* for "flash\\.spec\\.ts › flashes" since \\d\\d:\\d\\d:\\d\\d\\.\\d{3} \\(token ${held.token}\\), expires in .+ unless renewed$`,
        ),
      );
      expect(lines[3]).toBe('waiting (1), in serving order:');
      expect(lines[4]).toMatch(
        new RegExp(`^ {2}1\\. request #\\d+ \\(tags \\[arm64\\], priority 3\\) of pid ${process.pid} on .* for "boot\\.spec\\.ts › boots", queued since `),
      );

      const json = await runCliProcess(['-l', file, 'leases', '--json']);
      expect(json.code, json.stderr).toBe(0);
      const snapshot = JSON.parse(json.stdout) as { holders: { device: string; token: number }[]; waiters: { position: number; priority: number }[] };
      expect(snapshot.holders.map((h) => [h.device, h.token])).toEqual([['dut1', held.token]]);
      expect(snapshot.waiters.map((w) => [w.position, w.priority])).toEqual([[1, 3]]);

      await held.release();
      await (await queued).release();
    } finally {
      await holder.close();
      await waiter.close();
    }
  });
}

test('an unreachable store is an error naming it, exit 1', async () => {
  mkdirSync(test.info().outputDir, { recursive: true });
  const file = path.join(test.info().outputDir, 'lab.json');
  writeFileSync(file, JSON.stringify({ hosts: {}, leases: { store: 'postgres://lab:s3cret-pw@127.0.0.1:1/leases', connectTimeout: 2_000 } }));
  const run = await runCliProcess(['-l', file, 'leases']);
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/^labwright: .*127\.0\.0\.1:1.*/);
  expect(run.stderr).not.toContain('s3cret-pw');
});
