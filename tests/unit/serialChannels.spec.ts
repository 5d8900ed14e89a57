/** Channel budget for servers that close channels opening while a command ends (Dropbear 2022.82-2024.85). */
import { expect, test } from '@playwright/test';

import { ChannelBudget, serverClosesNewChannels } from '../../src/transport/channelBudget.js';

test('the affected Dropbear versions are recognised by their version string', () => {
  const affected = ['dropbear_2022.82', 'dropbear_2022.83', 'dropbear_2024.84', 'dropbear_2024.85'];
  const fine = ['dropbear_2020.81', 'dropbear_2024.86', 'dropbear_2025.87', 'OpenSSH_9.2p1 Debian-2+deb12u3', '', undefined];
  expect(affected.map(serverClosesNewChannels)).toEqual(affected.map(() => true));
  expect(fine.map(serverClosesNewChannels)).toEqual(fine.map(() => false));
});

/** Whether `promise` settled within a turn of the event loop. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

test('in serial mode an exec runs alone, channels open one at a time, open shells do not block', async () => {
  const budget = new ChannelBudget(10, 'board', 'probed');
  budget.serialExec = true;
  const exec = await budget.acquire({ kind: 'exec', name: 'exec' }, 1_000);
  const shell = budget.acquire({ kind: 'shell', name: 'default' }, 1_000);
  expect(await settled(shell)).toBe(false);
  exec.opened();
  // Open or not, a running exec may end at any moment: nothing opens meanwhile.
  expect(await settled(shell)).toBe(false);
  exec.release();
  const shellRelease = await shell;
  const second = budget.acquire({ kind: 'exec', name: 'exec' }, 1_000);
  expect(await settled(second)).toBe(false);
  shellRelease.opened();
  // The shell stays open; the exec may run now.
  expect(await settled(second)).toBe(true);
  (await second).release();
  shellRelease.release();
  expect(budget.inUse).toBe(0);
});

test('without serial mode the same requests are granted at once', async () => {
  const budget = new ChannelBudget(10, 'target', 'probed');
  const grants = await Promise.all([
    budget.acquire({ kind: 'exec', name: 'exec' }, 10),
    budget.acquire({ kind: 'shell', name: 'a' }, 10),
    budget.acquire({ kind: 'exec', name: 'exec' }, 10),
  ]);
  expect(budget.inUse).toBe(3);
  grants.forEach((slot) => slot.release());
});
