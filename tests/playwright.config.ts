/**
 * labwright's own test suite (`npm test`). Projects:
 * - unit: pure logic, no processes
 * - local: real bash, real Playwright runs in subprocesses
 * - containers: real OpenSSH, telnetd and vsftpd in containers (fixtures/lab/startLab.ts)
 * - userland:<name>: the suite in userlands/ over one userland of the embedded-style board
 *   (Dropbear, BusyBox, pure-ftpd; other login shells), see tests/helpers/userlands.ts
 * - leases: device leases on a throwaway PostgreSQL server (fixtures/lab/postgres.ts) and on the embedded store
 * - qemu: real U-Boot and Linux in QEMU boards (fixtures/qemu/board.ts)
 */
import { defineConfig } from '@playwright/test';

import { type UserlandName, type UserlandOptions, USERLANDS } from './helpers/userlands.js';

export default defineConfig<UserlandOptions>({
  testDir: '.',
  timeout: 120_000,
  forbidOnly: !!process.env.CI,
  fullyParallel: true,
  reporter: process.env.CI ? [['list'], ['html', { open: 'never', outputFolder: '../playwright-report/tests' }]] : [['list']],
  outputDir: '../test-results/tests',
  projects: [
    { name: 'unit', testDir: 'unit' },
    { name: 'local', testDir: 'local' },
    // Real daemons in containers; under CI=true these never skip (startLab fails loudly instead).
    { name: 'containers', testDir: 'containers' },
    // The same suite over each userland of the board: one project per shell and protocol.
    ...(Object.keys(USERLANDS) as UserlandName[]).map((userland) => ({ name: `userland:${userland}`, testDir: 'userlands', use: { userland } })),
    { name: 'leases', testDir: 'leases' },
    // Real U-Boot and Linux under QEMU (TCG): consoles over TCP, a hop, serialport on a pty pair; power control through QMP.
    { name: 'qemu', testDir: 'qemu' },
  ],
});
