/**
 * The main job: the example lab suite in examples/ run over every device of the lab as
 * Playwright projects, with an HTML report in playwright-report/ (`npm run examples`).
 */
import { defineConfig } from '@playwright/test';
import type { LabwrightOptions } from 'labwright';

const device = (name: string, defaultHost: string) => ({ name, testIgnore: 'console.spec.ts', use: { labFile: 'lab.config.ts', defaultHost } });
const qemuBoard = { labFile: 'lab.config.ts', defaultHost: 'qemu-board' };

export default defineConfig<LabwrightOptions>({
  testDir: 'examples',
  // Starts the containerized devices, then validates the lab (users write 'labwright/global-setup').
  globalSetup: ['./examples/lab/containers.ts', './examples/lab/qemuBoard.ts', './src/playwright/globalSetup.ts'],
  timeout: 120_000,
  fullyParallel: true,
  workers: 2,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  // One project per device: the same suite over the runner, an SSH board, a telnet-only
  // board (FTP transfers), a board reachable only through the bastion, an embedded board
  // (Dropbear, BusyBox) and a QEMU board on its serial console.
  projects: [
    device('local', 'local'),
    device('ssh-board', 'ssh-board'),
    device('telnet-board', 'telnet-board'),
    device('hidden-board', 'hidden-board'),
    device('embedded-board', 'embedded-board'),
    // A QEMU board on its serial console: power-on to U-Boot to a Linux login, then the
    // shell examples over the console (one test at a time: a console has one shell).
    { name: 'qemu-boot', testMatch: 'console.spec.ts', use: qemuBoard },
    { name: 'qemu-board', testMatch: 'shell.spec.ts', dependencies: ['qemu-boot'], fullyParallel: false, use: qemuBoard },
  ],
});
