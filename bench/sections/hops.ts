/** The cost of a hop: the same work on the inner target through the bastion and on the target directly. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Lab } from '../../src/host/lab.js';
import { mbps, median, type Row, row, timeRuns } from '../stats.js';
import { randomFile } from './transfer.js';

const MiB = 1024 * 1024;

export async function hopsSection(lab: Lab, sizeMiB: number): Promise<Row[]> {
  const direct = lab.remote('target');
  const hopped = lab.remote('inner');
  const rows: Row[] = [];
  const shell = (host: typeof direct) => timeRuns(300, () => host.run('true'));
  const exec = (host: typeof direct) => timeRuns(100, () => host.exec('true'));
  const [shellHop, shellDirect] = [median(await shell(hopped)), median(await shell(direct))];
  const [execHop, execDirect] = [median(await exec(hopped)), median(await exec(direct))];
  rows.push(row('hops', 'shell command through 1 hop', 'ms', shellHop, shellDirect, 'direct'));
  rows.push(row('hops', 'exec through 1 hop', 'ms', execHop, execDirect, 'direct'));

  const bytes = sizeMiB * MiB;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-bench-hop-'));
  const source = path.join(dir, 'source.bin');
  randomFile(source, bytes);
  for (const method of ['sftp', 'ftp'] as const) {
    for (const direction of ['put', 'get'] as const) {
      const measure = async (host: typeof direct) => {
        const remote = `/tmp/lw-bench-hop.${method}`;
        if (direction === 'get') await host.put(source, remote, { method });
        const ms = median(
          await timeRuns(3, () => (direction === 'put' ? host.put(source, remote, { method }) : host.get(remote, path.join(dir, 'back'), { method })), 1),
        );
        return mbps(bytes, ms);
      };
      const viaHop = await measure(hopped);
      const straight = await measure(direct);
      rows.push(row('hops', `${method} ${direction} ${sizeMiB} MiB through 1 hop`, 'MB/s', viaHop, straight, 'direct', '>= 0.6x'));
    }
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(`hops: ${rows.map((r) => `${r.metric} ${r.labwright.toFixed(1)} ${r.unit} (direct ${r.reference?.toFixed(1)})`).join('; ')}`);
  return rows;
}
