/**
 * A local serial device through `serialport`: a pseudo-terminal pair made by socat, with
 * BusyBox getty on the far end (the board side) running a small login program, exactly
 * as a board's getty on a USB serial adapter would look.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test as base } from '@playwright/test';
import { ensureQemuArtifacts } from '../../fixtures/qemu/board.js';
import { testLab } from '../helpers/labs.js';
import { ConnectionError } from '../../src/util/errors.js';
import { expect } from '../helpers/qemuLab.js';

const PASSWORD = 'serial-pw-1234';

interface SerialPair {
  /** The runner's end, opened by labwright. */
  device: string;
  stop(): Promise<void>;
}

/** socat's pty pair, getty on the board end; both killed at the end. */
async function serialPair(): Promise<SerialPair> {
  ensureQemuArtifacts(); // installs socat and busybox-static
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-serial-'));
  const device = path.join(dir, 'ttyRUNNER');
  const boardEnd = path.join(dir, 'ttyBOARD');
  const login = path.join(dir, 'login');
  writeFileSync(
    login,
    `#!/bin/sh\nprintf 'Password: '\nstty -echo\nread -r pw\nstty echo\necho\nif [ "$pw" = '${PASSWORD}' ]; then cd /tmp; PS1='serial$ ' exec /bin/sh -i; fi\necho 'Login incorrect'\nsleep 1\nexit 1\n`,
  );
  chmodSync(login, 0o755);
  const children: ChildProcess[] = [];
  const socat = spawn('socat', [`PTY,link=${device}`, `PTY,link=${boardEnd}`], { stdio: 'ignore' });
  children.push(socat);
  for (let i = 0; i < 100 && !(existsSync(device) && existsSync(boardEnd)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!existsSync(device)) throw new Error('socat made no pty pair');
  // getty in its own session: the pty becomes its controlling terminal, so Ctrl+C reaches the foreground job.
  const getty = spawn('/bin/busybox', ['getty', '-L', '-l', login, '115200', boardEnd, 'vt100'], { stdio: 'ignore', detached: true });
  children.push(getty);
  return {
    device,
    stop: async () => {
      for (const child of children) {
        try {
          process.kill(child === getty ? -getty.pid! : child.pid!, 'SIGKILL');
        } catch {}
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const test = base.extend<{ pair: SerialPair }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
  pair: async ({}, use) => {
    const pair = await serialPair();
    await use(pair);
    await pair.stop();
  },
});

test('a serial device: getty login, commands with exit codes, a timeout recovered with Ctrl+C', async ({ pair }) => {
  const { lab } = testLab({
    hosts: {
      usb: {
        term: 'console',
        users: { operator: { password: PASSWORD } },
        console: { transport: 'serial', path: pair.device, baudRate: 115_200, dataBits: 8, parity: 'none', stopBits: 1 },
      },
    },
  });
  try {
    const usb = lab.remote('usb');
    const r = await usb.run(['pwd', 'echo "$((6 * 7))"', 'ls /no/such/dir']);
    expect(r.results[0]).toHaveOutput('/tmp');
    expect(r.results[1]!.output).toBe('42\n');
    expect(r.results[2]!.exitCode).toBe(2);
    expect(usb.console.endpoint).toBe(`serial ${pair.device}`);

    const hung = (await usb.run('echo waiting; sleep 600', { timeout: 1_000 })).only;
    expect(hung.timedOut).toBe(true);
    expect(hung.error).toMatch(/interrupted and recovered/);
    expect(await usb.run('echo alive')).toHaveOutput('alive');

    // The device is opened exclusively: a second lab gets a clear error, not a silent share.
    const other = testLab({ hosts: { usb: { term: 'console', users: { operator: { password: PASSWORD } }, console: { transport: 'serial', path: pair.device, claimTimeout: 500 } } } });
    const error = await other.lab.remote('usb').run('true').catch((e: unknown) => e);
    await other.lab.close();
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).toMatch(/^usb \(console\): the console serial:.* is in use by another labwright process/);
  } finally {
    await lab.close();
  }
});

test('a wrong password on the serial console is reported as a refused login', async ({ pair }) => {
  const { lab } = testLab({
    hosts: { usb: { term: 'console', users: { operator: { password: 'not-the-password' } }, console: { transport: 'serial', path: pair.device } } },
  });
  try {
    const error = await lab.remote('usb').run('true').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).kind).toBe('auth');
    expect((error as Error).message).toMatch(/^usb \(console\): login as "operator" on serial .* was refused: the device answered "Login incorrect"/);
    expect((error as Error).message).not.toContain('not-the-password');
  } finally {
    await lab.close();
  }
});
