/**
 * `npm run bench`: labwright against the OpenSSH client on the same containers, in one
 * run, medians of repeated runs, printed as ratios. Not a test: nothing asserts timings.
 *
 *   npm run bench                    # everything, 256 MiB transfers
 *   npm run bench -- --size 64       # smaller transfers
 *   npm run bench -- --only latency,transfer   # sections: latency, transfer, hops, executor, share, leases, console, power
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { labInput } from '../fixtures/lab/labConfig.js';
import { startLab } from '../fixtures/lab/startLab.js';
import { startPoweredBoard } from '../fixtures/qemu/poweredBoard.js';
import { defineLab } from '../src/config/defineLab.js';
import { Lab } from '../src/host/lab.js';
import { OpenSshMaster, run } from './openssh.js';
import { consoleSection } from './sections/console.js';
import { executorSection } from './sections/executor.js';
import { hopsSection } from './sections/hops.js';
import { latencySection } from './sections/latency.js';
import { leasesSection } from './sections/leases.js';
import { keyLogin, powerSection, qemuSsh } from './sections/power.js';
import { shareSection } from './sections/share.js';
import { transferSection } from './sections/transfer.js';
import { failedRow, formatTable, type Row } from './stats.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '256' },
    only: { type: 'string' },
  },
});
const sizeMiB = Number(values.size);
const only = values.only ? new Set(values.only.split(',')) : undefined;
const wanted = (name: string) => !only || only.has(name);

// MaxSessions 100 on the target so that OpenSSH's multiplexer can run 100 commands at once
// too; fixed ports so that it keeps them when the power section restarts it.
const started = await startLab({ roles: ['target', 'telnetOnly', 'bastion', 'inner'], roleOptions: { target: { maxSessions: 100, fixedPorts: true } } });
const target = started.host('target');
/** The power section's PDU: the container's power is `docker restart`. */
const POWER_POLL_MS = 250;
const input = labInput(started, { target: { power: { pdu: 'docker', outlet: target.name }, lifecycle: { pollInterval: POWER_POLL_MS } } });
input.pdus = {
  docker: { driver: 'command', on: 'docker start {outlet}', off: 'docker stop -t 0 {outlet}', cycle: 'docker restart -t 0 {outlet}', timeout: 60_000 },
};
const lab = new Lab(defineLab(input));
const knownHosts = (input.hosts!.target!.ssh as { knownHosts: string[] }).knownHosts[0]!;
const master = new OpenSshMaster({
  address: '127.0.0.1',
  port: target.ports.ssh!,
  user: started.credentials.user.username,
  key: started.credentials.keys.ed25519.privateKeyPath,
  knownHosts,
});
const rows: Row[] = [];
try {
  await master.start();
  console.log(`labwright benchmark: container ${target.name}, transfers of ${sizeMiB} MiB, OpenSSH client over a ControlMaster socket as reference\n`);
  /** Runs one section; a section that fails is reported in the table and the others still run. */
  const section = async (name: string, body: () => Promise<Row[]>) => {
    if (!wanted(name)) return;
    try {
      rows.push(...(await body()));
    } catch (error) {
      console.error(`section ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      rows.push(failedRow(name, error));
    }
  };
  await section('latency', () => latencySection(lab, master));
  await section('transfer', () => transferSection(lab, master, sizeMiB));
  await section('hops', () => hopsSection(lab, Math.min(sizeMiB, 128)));
  await section('executor', () => executorSection(lab, master));
  await section('share', () => shareSection(lab, 100));
  await section('leases', () => leasesSection());
  await section('console', () => consoleSection(started));
  // QEMU: a Linux board with SSH, powered through QMP; the reference resets it through QMP too.
  await section('power', async () => {
    const qemu = await startPoweredBoard({ name: 'bench', host: { lifecycle: { pollInterval: POWER_POLL_MS } } });
    try {
      return await powerSection(
        { label: 'QEMU', host: qemu.host, ssh: qemuSsh(qemu), cycle: () => qemu.board.reset(), pollMs: POWER_POLL_MS, timeoutMs: 180_000 },
        3,
      );
    } finally {
      await qemu.close();
    }
  });
  // Last: it restarts the target (the OpenSSH master above goes with it).
  await section('power', () =>
    powerSection(
      {
        label: 'container',
        host: lab.remote('target'),
        ssh: keyLogin(master.target),
        cycle: async () => void (await run('docker', ['restart', '-t', '0', target.name])),
        pollMs: POWER_POLL_MS,
        timeoutMs: 120_000,
      },
      3,
    ),
  );
  console.log(`\n${formatTable(rows)}\n`);
  console.log('ratio: how many times faster labwright is than the reference (above 1 is better).');
  const failed = rows.filter((r) => r.failure !== undefined);
  if (failed.length > 0) process.exitCode = 1;
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(path.join('bench/results', 'latest.json'), JSON.stringify({ date: new Date().toISOString(), sizeMiB, rows }, null, 2));
} finally {
  await master.stop();
  await lab.close();
  await started.stop();
}
