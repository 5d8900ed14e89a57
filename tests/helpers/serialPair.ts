/**
 * A serial line without hardware: socat's pseudo-terminal pair, with BusyBox getty on the
 * far end (the "board" side) running a small login program, exactly as a board's getty on
 * a USB serial adapter would look. Processes are killed by `stop()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ensureQemuArtifacts } from '../../fixtures/qemu/board.js';

/** The password the pair's login program accepts. */
export const SERIAL_PASSWORD = 'serial-pw-1234';

export interface SerialPair {
  /** The runner's end of the line (labwright, or a terminal server, opens it). */
  device: string;
  /** Scratch directory of the pair (config files of a terminal server may go here). */
  dir: string;
  /** Starts a process that is killed with the pair. */
  spawn(command: string, args: string[]): ChildProcess;
  stop(): Promise<void>;
}

export async function serialPair(): Promise<SerialPair> {
  ensureQemuArtifacts(); // installs socat, busybox-static and ser2net
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-serial-'));
  const device = path.join(dir, 'ttyRUNNER');
  const boardEnd = path.join(dir, 'ttyBOARD');
  const login = path.join(dir, 'login');
  writeFileSync(
    login,
    `#!/bin/sh\nprintf 'Password: '\nstty -echo\nread -r pw\nstty echo\necho\nif [ "$pw" = '${SERIAL_PASSWORD}' ]; then cd /tmp; PS1='serial$ ' exec /bin/sh -i; fi\necho 'Login incorrect'\nsleep 1\nexit 1\n`,
  );
  chmodSync(login, 0o755);
  const children: ChildProcess[] = [];
  const start = (command: string, args: string[], detached = false) => {
    const child = spawn(command, args, { stdio: 'ignore', detached });
    children.push(child);
    return child;
  };
  start('socat', [`PTY,link=${device}`, `PTY,link=${boardEnd}`]);
  for (let i = 0; i < 100 && !(existsSync(device) && existsSync(boardEnd)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!existsSync(device)) throw new Error('socat made no pty pair');
  // getty in its own session: the pty becomes its controlling terminal, so Ctrl+C reaches the foreground job.
  start('/bin/busybox', ['getty', '-L', '-l', login, '115200', boardEnd, 'vt100'], true);
  return {
    device,
    dir,
    spawn: (command, args) => start(command, args),
    stop: async () => {
      for (const child of children) {
        try {
          // Detached children lead their own process group: end it whole.
          process.kill(child.spawnargs.includes('getty') ? -child.pid! : child.pid!, 'SIGKILL');
        } catch {}
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
