/**
 * Reverse SFTP share: the device's own `sftp` fetching a file from a runner folder shared
 * with `host.share()`, against the runner pushing the same file with labwright SFTP.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Lab } from '../../src/host/lab.js';
import { mbps, median, type Row, row, timeRuns } from '../stats.js';

const MiB = 1024 * 1024;

function randomFile(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  for (let done = 0; done < bytes; done += MiB) writeSync(fd, randomBytes(Math.min(MiB, bytes - done)));
  closeSync(fd);
}

export async function shareSection(lab: Lab, sizeMiB: number): Promise<Row[]> {
  const bytes = sizeMiB * MiB;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-bench-share-'));
  const shared = path.join(dir, 'shared');
  mkdirSync(shared);
  const source = path.join(shared, 'payload.bin');
  randomFile(source, bytes);
  const target = lab.remote('target');
  const remote = '/tmp/lw-bench-share';
  const runs = 3;
  const time = async (body: () => Promise<unknown>) => median(await timeRuns(runs, body, 1));

  const share = await target.share(shared, { readOnly: true });
  try {
    const fetched = await time(async () => {
      const r = await target.exec(share.sftpCommand(['-b', '-']), { stdin: `get payload.bin ${remote}.fetched\n`, timeout: 600_000 });
      if (r.exitCode !== 0) throw new Error(`the device's sftp failed to fetch from the share: ${r.stderr?.trim() || r.output.trim()}`);
      const size = await target.exec(`stat -c %s ${remote}.fetched`);
      if (Number(size.output.trim()) !== bytes) throw new Error(`the device fetched ${size.output.trim()} bytes instead of ${bytes}`);
    });
    const pushed = await time(() => target.put(source, `${remote}.pushed`, { method: 'sftp' }));
    console.log(`share: device fetch ${mbps(bytes, fetched).toFixed(0)} MB/s, runner push (labwright sftp) ${mbps(bytes, pushed).toFixed(0)} MB/s`);
    return [row('share', `device sftp fetches ${sizeMiB} MiB from host.share()`, 'MB/s', mbps(bytes, fetched), mbps(bytes, pushed), 'labwright sftp put')];
  } finally {
    await share.stop();
    await target.exec(`rm -f ${remote}.fetched ${remote}.pushed`);
    rmSync(dir, { recursive: true, force: true });
  }
}
