/**
 * QEMU boards for the `qemu` test project: real U-Boot and Linux, booted once per worker
 * where tests do not disrupt them (fixtures/qemu/board.ts), each with a Lab whose host
 * reaches the board's serial console (and SSH where the board has it).
 */
import { writeFileSync } from 'node:fs';

import { expect as baseExpect, test as base } from '@playwright/test';

import { BOARD_PASSWORD, type BoardOptions, ensureQemuArtifacts, QemuBoard } from '../../fixtures/qemu/board.js';
import { defineLab, type LabInput } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import type { RemoteHost } from '../../src/host/remoteHost.js';
import { labwrightMatchers } from '../../src/playwright/matchers.js';

export { BOARD_PASSWORD, QemuBoard };

/** A running board with a lab that reaches it as host `name`. */
export interface BoardLab {
  board: QemuBoard;
  lab: Lab;
  host: RemoteHost;
  /** Every lab event since the lab was made. */
  events: LabEvent[];
  close(): Promise<void>;
}

/** The lab host entry of a board: its console over raw TCP, SSH where it has it. */
export function boardHost(board: QemuBoard, overrides: Partial<HostInput> = {}): HostInput {
  const files = ensureQemuArtifacts();
  return {
    address: '127.0.0.1',
    term: board.options.ssh ? 'ssh' : 'console',
    users: { root: { password: BOARD_PASSWORD } },
    ...(board.options.ssh ? { ssh: { port: board.sshPort!, hostKeyPolicy: 'strict' as const, knownHosts: [knownHostsFor(board, files.hostKey)] } } : {}),
    console: { transport: 'tcp', port: board.consolePort },
    commandTimeout: 20_000,
    ...overrides,
  };
}

/** A known_hosts file pinning the board's fixed Dropbear host key at its forwarded port. */
function knownHostsFor(board: QemuBoard, hostKey: string): string {
  const file = `${board.stateDir}/known_hosts`;
  writeFileSync(file, `[127.0.0.1]:${board.sshPort} ${hostKey}\n`);
  return file;
}

/** Starts a board (paused), connects its console, powers it on, and waits for its first prompt (U-Boot's countdown or Linux's login). */
export async function startBoardLab(
  options: BoardOptions & { hostName?: string; host?: Partial<HostInput>; lab?: Omit<LabInput, 'hosts'> },
): Promise<BoardLab> {
  const board = await QemuBoard.create(options);
  try {
    const name = options.hostName ?? 'board';
    const lab = new Lab(defineLab({ ...options.lab, hosts: { [name]: boardHost(board, options.host) } }));
    const events: LabEvent[] = [];
    lab.events.on((event) => events.push(event));
    const host = lab.remote(name);
    // Connect before powering on: a wait=off TCP console drops what nobody reads.
    await host.console.connection.ensure();
    await board.powerOn();
    await host.console.waitFor(board.options.firmware === 'u-boot' ? /Hit any key to stop autoboot/ : /login: $/, { timeout: 120_000, keep: true });
    return {
      board,
      lab,
      host,
      events,
      close: async () => {
        await lab.close();
        await board.stop();
      },
    };
  } catch (error) {
    await board.stop();
    throw error;
  }
}

/** Worker fixtures: a U-Boot board with SSH (`uboot`) and a Linux-only board on its console (`linux`). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no test-scoped fixtures
export const test = base.extend<{}, { uboot: BoardLab; linux: BoardLab }>({
  uboot: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
    async ({}, use) => {
      const lab = await startBoardLab({ name: 'uboot', hostName: 'uboot', firmware: 'u-boot', ssh: true });
      await use(lab);
      await lab.close();
    },
    { scope: 'worker', timeout: 5 * 60_000, title: 'U-Boot board' },
  ],
  linux: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
    async ({}, use) => {
      const lab = await startBoardLab({ name: 'linux', hostName: 'linux', firmware: 'none' });
      await use(lab);
      await lab.close();
    },
    { scope: 'worker', timeout: 5 * 60_000, title: 'Linux board' },
  ],
});

/** Playwright's expect with labwright's result matchers (toSucceed, toHaveExitCode, toHaveOutput). */
export const expect = baseExpect.extend(labwrightMatchers);
