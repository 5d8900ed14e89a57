/**
 * A local serial device through `serialport`: a pseudo-terminal pair made by socat, with
 * BusyBox getty on the far end (the board side) running a small login program, exactly
 * as a board's getty on a USB serial adapter would look.
 */
import { test as base } from '@playwright/test';

import { ConnectionError } from '../../src/util/errors.js';
import { testLab } from '../helpers/labs.js';
import { expect } from '../helpers/qemuLab.js';
import { SERIAL_PASSWORD as PASSWORD, type SerialPair, serialPair } from '../helpers/serialPair.js';

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
    const other = testLab({
      hosts: { usb: { term: 'console', users: { operator: { password: PASSWORD } }, console: { transport: 'serial', path: pair.device, claimTimeout: 500 } } },
    });
    const error = await other.lab
      .remote('usb')
      .run('true')
      .catch((e: unknown) => e);
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
    const error = await lab
      .remote('usb')
      .run('true')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).kind).toBe('auth');
    expect((error as Error).message).toMatch(/^usb \(console\): login as "operator" on serial .* was refused: the device answered "Login incorrect"/);
    expect((error as Error).message).not.toContain('not-the-password');
  } finally {
    await lab.close();
  }
});
