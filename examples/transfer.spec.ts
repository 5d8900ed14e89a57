/** File transfer with the device's own method (copy, SFTP, FTP, ...), verified both ways. */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from 'labwright';

test('a directory goes to the device and comes back identical', async ({ dut }) => {
  const local = mkdtempSync(path.join(os.tmpdir(), 'labwright-example-'));
  mkdirSync(path.join(local, 'firmware/config'), { recursive: true });
  writeFileSync(path.join(local, 'firmware/image.bin'), Buffer.alloc(2 * 1024 * 1024, 0xa5));
  writeFileSync(path.join(local, 'firmware/config/settings.ini'), '[net]\ndhcp=yes\n');

  const remote = `/tmp/labwright-example-${test.info().project.name}-${Date.now()}`;
  const up = await dut.put(path.join(local, 'firmware'), remote);
  expect(up.files).toBe(2);
  expect(await dut.run(`cat ${remote}/config/settings.ini`)).toHaveOutput('dhcp=yes');

  const down = await dut.get(remote, path.join(local, 'back'));
  expect(down.bytes).toBe(up.bytes);
  expect(readFileSync(path.join(local, 'back/image.bin'))).toEqual(readFileSync(path.join(local, 'firmware/image.bin')));
  await dut.run(`rm -rf ${remote}`);
});
