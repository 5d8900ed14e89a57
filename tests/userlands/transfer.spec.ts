/**
 * Every transfer method the userland's host offers (SFTP and SCP need SSH; FTP and nc work
 * over telnet hosts too), both ways, with 5 MiB holding every byte value, sha256-verified
 * by labwright and checked again independently on both sides; and a directory tree.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { TransferMethod } from '../../src/config/schema.js';
import { expect, test, type UserlandName, USERLANDS } from '../helpers/userlands.js';

/** 5 MiB in which every byte value occurs at every offset modulo 256 (a pseudo-random permutation per block). */
function everyByteValue(size = 5 * 1024 * 1024): Buffer {
  const data = Buffer.alloc(size);
  let state = 12345;
  for (let block = 0; block < size; block += 256) {
    const values = Array.from({ length: 256 }, (_, i) => i);
    for (let i = 255; i > 0; i--) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      const j = state % (i + 1);
      [values[i], values[j]] = [values[j]!, values[i]!];
    }
    Buffer.from(values).copy(data, block);
  }
  return data;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

// Every method any userland offers; each test skips what its own host cannot do.
const ALL_METHODS = [...new Set(Object.values(USERLANDS).flatMap((land) => land.methods))] as TransferMethod[];

for (const method of ALL_METHODS) {
  test.describe(`${method}`, () => {
    test.beforeEach(({ land }) => {
      test.skip(!(land.methods as readonly TransferMethod[]).includes(method), `${method} needs SSH; this host is telnet only`);
    });

    test('5 MiB of every byte value goes to the device and back, sha256-verified', async ({ device, userland }) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-userland-'));
      const data = everyByteValue();
      writeFileSync(path.join(dir, 'up.bin'), data);
      const remote = `/tmp/lw-${userland satisfies UserlandName}-${method}.bin`;

      const up = await device.put(path.join(dir, 'up.bin'), remote, { method, verify: 'sha256' });
      expect(up).toMatchObject({ method, bytes: data.length, verified: 'sha256' });
      // Checked again on the device, apart from labwright's own verification.
      expect((await device.exec(`sha256sum ${remote}`)).output.split(' ')[0]).toBe(sha256(data));

      const down = await device.get(remote, path.join(dir, 'down.bin'), { method, verify: 'sha256' });
      expect(down).toMatchObject({ method, bytes: data.length, verified: 'sha256' });
      expect(sha256(readFileSync(path.join(dir, 'down.bin')))).toBe(sha256(data));
      await device.exec(`rm -f ${remote}`);
    });

    test('a directory tree goes to the device and back, verified', async ({ device, userland }) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-userland-tree-'));
      mkdirSync(path.join(dir, 'tree/sub/deeper'), { recursive: true });
      writeFileSync(path.join(dir, 'tree/sub/deeper/blob.bin'), everyByteValue(300_000));
      writeFileSync(path.join(dir, 'tree/sub/notes.txt'), 'tab\there\nline two\n');
      writeFileSync(path.join(dir, 'tree/empty'), '');
      const remote = `/tmp/lw-${userland}-${method}-tree`;
      await device.exec(`rm -rf ${remote}`);

      const up = await device.put(path.join(dir, 'tree'), remote, { method, verify: 'sha256' });
      expect(up).toMatchObject({ files: 3, bytes: 300_000 + 18 });
      expect((await device.exec(`cat ${remote}/sub/notes.txt`)).output).toBe('tab\there\nline two\n');

      const down = await device.get(remote, path.join(dir, 'back'), { method, verify: 'sha256' });
      expect(down.files).toBe(3);
      expect(readFileSync(path.join(dir, 'back/sub/deeper/blob.bin'))).toEqual(readFileSync(path.join(dir, 'tree/sub/deeper/blob.bin')));
      expect(readFileSync(path.join(dir, 'back/empty'))).toEqual(Buffer.alloc(0));
      await device.exec(`rm -rf ${remote}`);
    });
  });
}
