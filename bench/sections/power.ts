/**
 * Reboots: the time from `reboot({ hard: true })` until the shell is usable again, split into
 * power (the driver's cycle), boot (until the console shows its login prompt; SSH accepting a
 * login on a board without a console) and reconnect (until SSH and the shell answer). Reference: the same power cycle done directly, then `ssh host true` (a new
 * OpenSSH connection each time) polled at the same interval until it succeeds, as a script
 * waiting for a board would.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { BOARD_PASSWORD, ensureQemuArtifacts } from '../../fixtures/qemu/board.js';
import type { PoweredBoard } from '../../fixtures/qemu/poweredBoard.js';
import type { RemoteHost } from '../../src/host/remoteHost.js';
import { type OpenSshTarget, run } from '../openssh.js';
import { median, type Row, row } from '../stats.js';

/** A board to reboot: the lab host (with power control) and the same board for the reference. */
export interface PowerBoard {
  /** What it is, for the table: `container`, `QEMU`. */
  label: string;
  host: RemoteHost;
  /** `ssh` arguments logging in and running `true` (no master: every poll is a new connection), and its environment. */
  ssh: { args: string[]; env?: Record<string, string> };
  /** The power cycle without labwright (the same PDU call). */
  cycle(): Promise<void>;
  /** Pause between two polls, the host's `lifecycle.pollInterval` too. */
  pollMs: number;
  /** Bound on one reboot. */
  timeoutMs: number;
}

/** OpenSSH logging in with a key, a new connection each time (no master). */
export function keyLogin(t: OpenSshTarget): PowerBoard['ssh'] {
  return {
    args: [
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-i',
      t.key,
      '-o',
      `UserKnownHostsFile=${t.knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-p',
      String(t.port),
      `${t.user}@${t.address}`,
      'true',
    ],
  };
}

/** OpenSSH logging in to a QEMU board as root with its password (given by an askpass script, as sshpass would). */
export function qemuSsh(board: PoweredBoard): PowerBoard['ssh'] {
  const askpass = path.join(board.board.stateDir, 'askpass');
  writeFileSync(askpass, `#!/bin/sh\necho '${BOARD_PASSWORD}'\n`);
  chmodSync(askpass, 0o700);
  const knownHosts = path.join(board.board.stateDir, 'known_hosts.openssh');
  writeFileSync(knownHosts, `[127.0.0.1]:${board.board.sshPort} ${ensureQemuArtifacts().hostKey}\n`);
  return {
    args: [
      '-o',
      'PreferredAuthentications=password',
      '-o',
      'PubkeyAuthentication=no',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-p',
      String(board.board.sshPort),
      'root@127.0.0.1',
      'true',
    ],
    env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
  };
}

/** `ssh host true` until it succeeds; resolves with the time it took. */
async function pollOpenSsh(board: PowerBoard, started: number): Promise<number> {
  for (;;) {
    const ok = await run('ssh', ['-o', 'ConnectTimeout=2', ...board.ssh.args], undefined, board.ssh.env).then(
      () => true,
      () => false,
    );
    if (ok) return performance.now() - started;
    if (performance.now() - started > board.timeoutMs) throw new Error(`${board.label}: OpenSSH did not get in within ${board.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, board.pollMs));
  }
}

export async function powerSection(board: PowerBoard, runs: number): Promise<Row[]> {
  const phases = { power: [] as number[], boot: [] as number[], reconnect: [] as number[], total: [] as number[] };
  const reference: number[] = [];
  await board.host.run('true');
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const result = await board.host.reboot({ hard: true, timeout: board.timeoutMs });
    const total = performance.now() - started;
    phases.power.push(result.powerMs);
    phases.boot.push(result.bootMs ?? Number.NaN);
    phases.reconnect.push(result.reconnectMs ?? Number.NaN);
    phases.total.push(total);
    const direct = performance.now();
    await board.cycle();
    reference.push(await pollOpenSsh(board, direct));
    // labwright's connection saw the reference's cycle: let it find the board again before the next run.
    await board.host.waitUntilUp({ timeout: board.timeoutMs });
  }
  const m = (values: number[]) => median(values);
  const what = `reboot({ hard: true }) on a ${board.label} board`;
  console.log(
    `power: ${what}: power ${m(phases.power).toFixed(0)} ms, boot ${m(phases.boot).toFixed(0)} ms, reconnect ${m(phases.reconnect).toFixed(0)} ms, total ${m(phases.total).toFixed(0)} ms; same cycle + ssh polled every ${board.pollMs} ms ${m(reference).toFixed(0)} ms (medians of ${runs})`,
  );
  return [
    row('power', `${what}: power (the cycle)`, 'ms', m(phases.power)),
    row('power', `${what}: boot (until its console's login prompt, or SSH without a console)`, 'ms', m(phases.boot)),
    row('power', `${what}: reconnect (until SSH and the shell answer)`, 'ms', m(phases.reconnect)),
    row('power', `${what}: total, to a usable shell`, 'ms', m(phases.total), m(reference), `same cycle + ssh polled every ${board.pollMs} ms`, '>= 0.8x'),
  ];
}
