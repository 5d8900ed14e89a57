/**
 * The userland matrix: one suite (tests/userlands/) run as one Playwright project per
 * userland of the lab board (fixtures/board/): BusyBox ash over Dropbear and over BusyBox
 * telnetd, and users whose login shells are dash, zsh, mksh and a bash with a noisy
 * profile. The project's `userland` option names the entry of {@link USERLANDS}; each
 * worker starts its own board.
 */
import { test as base } from '@playwright/test';

import { labInput } from '../../fixtures/lab/labConfig.js';
import { type BoardShell, type Lab as StartedLab, startLab } from '../../fixtures/lab/startLab.js';
import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput, TransferMethod } from '../../src/config/schema.js';
import { Lab } from '../../src/host/lab.js';
import type { RemoteHost } from '../../src/host/remoteHost.js';
import type { ShellFamily } from '../../src/session/wire.js';

/** One userland of the board: a login shell reached over one protocol. */
export interface Userland {
  /** The board user whose login shell this is. */
  shell: BoardShell;
  term: 'ssh' | 'telnet';
  /** How labwright reaches the shell's builtins (see src/session/wire.ts). */
  family: ShellFamily;
  /** A file the login shell reads at start, relative to the home directory. */
  rcFile: string;
  /** Transfer methods of the host: telnet hosts have no SSH, so neither SFTP nor SCP. */
  methods: readonly TransferMethod[];
}

const SSH_METHODS = ['sftp', 'scp', 'ftp', 'nc'] as const;
const TELNET_METHODS = ['ftp', 'nc'] as const;

/** The matrix, by project option value. */
export const USERLANDS = {
  'ash-ssh': { shell: 'ash', term: 'ssh', family: 'posix', rcFile: '.profile', methods: SSH_METHODS },
  'ash-telnet': { shell: 'ash', term: 'telnet', family: 'posix', rcFile: '.profile', methods: TELNET_METHODS },
  'dash-ssh': { shell: 'dash', term: 'ssh', family: 'posix', rcFile: '.profile', methods: SSH_METHODS },
  'zsh-ssh': { shell: 'zsh', term: 'ssh', family: 'zsh', rcFile: '.zshrc', methods: SSH_METHODS },
  'mksh-ssh': { shell: 'mksh', term: 'ssh', family: 'posix', rcFile: '.mkshrc', methods: SSH_METHODS },
  'noisy-bash-telnet': { shell: 'noisyBash', term: 'telnet', family: 'bash', rcFile: '.bashrc', methods: TELNET_METHODS },
} as const satisfies Record<string, Userland>;

export type UserlandName = keyof typeof USERLANDS;

/** The option a userland project sets. */
export interface UserlandOptions {
  userland: UserlandName;
}

interface WorkerFixtures extends UserlandOptions {
  board: StartedLab;
}

interface TestFixtures {
  /** This project's userland. */
  land: Userland;
  /** A labwright Lab on the board, closed after the test. */
  boardLab: Lab;
  /** The board as a labwright host: the userland's user, protocol and default transfer. */
  device: RemoteHost;
}

/**
 * A labwright Lab whose host `board` is the userland's user, protocol and default transfer;
 * `host` options are merged in. Recovery steps are bounded at 1.5 s (a shell answers
 * within milliseconds once interrupted) so that the tests of unstoppable jobs stay short.
 */
export function userlandLab(board: StartedLab, land: Userland, host: Partial<HostInput> = {}): Lab {
  const user = board.credentials.board[land.shell].username;
  return new Lab(
    defineLab(labInput(board, { board: { user, term: land.term, transfer: land.methods[0], ...host, shell: { recoveryTimeout: 1_500, ...host.shell } } })),
  );
}

export const test = base.extend<TestFixtures, WorkerFixtures>({
  userland: ['ash-ssh', { option: true, scope: 'worker' }],
  board: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
    async ({}, use) => {
      const lab = await startLab({ roles: ['board'] });
      await use(lab);
      await lab.stop();
    },
    { scope: 'worker', timeout: 30 * 60_000, title: 'board container' },
  ],
  land: async ({ userland }, use) => use(USERLANDS[userland]),
  boardLab: async ({ board, land }, use) => {
    const lab = userlandLab(board, land);
    await use(lab);
    await lab.close();
  },
  device: async ({ boardLab }, use) => use(boardLab.remote('board')),
});

export { expect } from '@playwright/test';
