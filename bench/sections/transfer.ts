/** Throughput: labwright SFTP, SCP and FTP against OpenSSH's sftp and scp over the same master. */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Lab } from '../../src/host/lab.js';
import type { OpenSshMaster } from '../openssh.js';
import { mbps, median, type Row, row, timeRuns } from '../stats.js';

const MiB = 1024 * 1024;

export function randomFile(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  for (let done = 0; done < bytes; done += MiB) writeSync(fd, randomBytes(Math.min(MiB, bytes - done)));
  closeSync(fd);
}

export async function transferSection(lab: Lab, master: OpenSshMaster, sizeMiB: number): Promise<Row[]> {
  const bytes = sizeMiB * MiB;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-bench-xfer-'));
  const source = path.join(dir, 'source.bin');
  randomFile(source, bytes);
  const target = lab.remote('target');
  const remote = '/tmp/lw-bench.bin';
  const runs = 3;
  const time = async (body: () => Promise<unknown>) => median(await timeRuns(runs, body, 1));

  const results: Record<string, number> = {};
  for (const method of ['sftp', 'scp', 'ftp', 'nc'] as const) {
    results[`${method} put`] = await time(() => target.put(source, `${remote}.${method}`, { method }));
    results[`${method} get`] = await time(() => target.get(`${remote}.${method}`, path.join(dir, `back.${method}`), { method }));
  }
  const dest = `${master.destination}:${remote}.openssh`;
  results['openssh sftp put'] = await time(() => master.sftp(`put ${source} ${remote}.openssh\n`));
  results['openssh sftp get'] = await time(() => master.sftp(`get ${remote}.openssh ${path.join(dir, 'back.openssh')}\n`));
  results['openssh scp put'] = await time(() => master.scp(source, dest));
  results['openssh scp get'] = await time(() => master.scp(dest, path.join(dir, 'back.openssh')));
  await target.exec(`rm -f ${remote}.*`);
  rmSync(dir, { recursive: true, force: true });

  const rate = (key: string) => mbps(bytes, results[key]!);
  const rows: Row[] = [];
  for (const direction of ['put', 'get'] as const) {
    rows.push(
      row('transfer', `sftp ${direction} ${sizeMiB} MiB`, 'MB/s', rate(`sftp ${direction}`), rate(`openssh sftp ${direction}`), 'OpenSSH sftp', '>= 1x'),
    );
    rows.push(row('transfer', `scp ${direction} ${sizeMiB} MiB`, 'MB/s', rate(`scp ${direction}`), rate(`openssh scp ${direction}`), 'OpenSSH scp -O'));
    rows.push(row('transfer', `ftp ${direction} ${sizeMiB} MiB`, 'MB/s', rate(`ftp ${direction}`), rate(`sftp ${direction}`), 'labwright sftp'));
    rows.push(row('transfer', `nc ${direction} ${sizeMiB} MiB`, 'MB/s', rate(`nc ${direction}`), rate(`sftp ${direction}`), 'labwright sftp'));
  }
  console.log(
    `transfer: ${Object.entries(results)
      .map(([k, v]) => `${k} ${mbps(bytes, v).toFixed(0)} MB/s`)
      .join(', ')}`,
  );
  return rows;
}
