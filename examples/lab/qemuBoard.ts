/**
 * Global setup of the example suite's QEMU board: real U-Boot booting a real Debian kernel
 * (fixtures/qemu/board.ts), serial console on a TCP port, SSH forwarded. The board is left
 * powered off (QEMU paused) until the console example powers it on, so its console log
 * starts at the firmware. Exports where it is, as a CI job would describe a real board.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { BOARD_PASSWORD, ensureQemuArtifacts, QemuBoard } from '../../fixtures/qemu/board.js';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const board = await QemuBoard.create({ name: 'example', firmware: 'u-boot', ssh: true, lifetimeMs: 30 * 60_000 });
  const knownHosts = path.join(board.stateDir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${board.sshPort} ${ensureQemuArtifacts().hostKey}\n`);
  Object.assign(process.env, {
    LAB_QEMU_CONSOLE: `127.0.0.1:${board.consolePort}`,
    LAB_QEMU_SSH: `127.0.0.1:${board.sshPort}`,
    LAB_QEMU_QMP: board.qmpSocket,
    LAB_QEMU_KNOWN_HOSTS: knownHosts,
    LAB_QEMU_PASSWORD: BOARD_PASSWORD,
  });
  return () => board.stop();
}
