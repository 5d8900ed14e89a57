/**
 * Hops on a real topology: a bastion reachable from the runner, an inner target only
 * reachable through it, and a second bastion (mid) for a two-hop chain
 * runner → bastion → mid → inner. Every protocol goes through the chain.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import type { HopPath } from '../../src/transport/hopPath.js';
import { expect, labInput, privateLab, type StartedLab, test } from '../helpers/containerLab.js';
import { readBanner } from '../helpers/net.js';

let started: StartedLab;
test.beforeAll(async () => {
  started = await privateLab({ roles: ['bastion', 'mid', 'inner'] });
});
test.afterAll(async () => {
  await started?.stop();
});

/** A lab over the topology; `innerTelnet` is the inner target's telnetd through the bastion. */
function labOf(overrides: Record<string, Partial<HostInput>> = {}) {
  const input = labInput(started, overrides);
  input.hosts!.innerTelnet = { ...input.hosts!.inner!, term: 'telnet', transfer: 'ftp', telnet: { port: 23 } };
  const lab = new Lab(defineLab(input));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  return { lab, events };
}

const connects = (events: LabEvent[], host: string) => events.filter((e) => e.type === 'connection' && e.host === host && e.event === 'connected').length;

test('the runner cannot reach the inner target or mid directly', async () => {
  const inner = await started.assertUnreachableFromRunner('inner');
  expect(inner.length).toBeGreaterThan(0);
  expect(inner.every((probe) => !probe.reachable)).toBe(true);
  await started.assertUnreachableFromRunner('mid');
  // ... while the bastion can, which is what makes the chain necessary.
  expect(await started.canReachFrom('bastion', started.host('inner').endpoints.bastion!.host, 22)).toBe(true);
});

for (const name of ['inner', 'deep'] as const) {
  test.describe(`through ${name === 'inner' ? 'one hop' : 'two hops'} (${name})`, () => {
    test('run, exec and named sessions', async () => {
      const { lab, events } = labOf();
      const host = lab.remote(name);
      const r = await host.run(['cd /tmp', 'pwd; hostname']);
      expect(r.last.output).toBe('/tmp\ninner\n');
      const execs = await Promise.all([1, 2, 3].map((i) => host.exec(`echo ${i}; echo e${i} >&2`)));
      expect(execs.map((e) => [e.output, e.stderr])).toEqual([1, 2, 3].map((i) => [`${i}\n`, `e${i}\n`]));
      const side = await host.openSession('side');
      expect((await side.run('hostname')).only.output).toBe('inner\n');
      expect(connects(events, name)).toBe(1);
      expect(connects(events, 'bastion')).toBe(1);
      if (name === 'deep') expect(connects(events, 'mid')).toBe(1);
      await lab.close();
    });

    for (const method of ['sftp', 'scp', 'ftp', 'nc'] as const) {
      test(`${method} put and get, verified`, async () => {
        const { lab } = labOf();
        const host = lab.remote(name);
        const dir = mkdtempSync(path.join(os.tmpdir(), `lw-hop-${method}-`));
        mkdirSync(path.join(dir, 'tree/sub'), { recursive: true });
        writeFileSync(path.join(dir, 'tree/sub/data.bin'), Buffer.from(Array.from({ length: 4_000_000 }, (_, i) => (i * 13) % 256)));
        writeFileSync(path.join(dir, 'tree/note.txt'), 'through the bastion\n');
        const remote = `/tmp/lw-hop-${name}-${method}`;
        const up = await host.put(path.join(dir, 'tree'), remote, { method, verify: 'sha256' });
        expect(up).toMatchObject({ files: 2, verified: 'sha256' });
        const down = await host.get(remote, path.join(dir, 'back'), { method, verify: 'sha256' });
        expect(down.files).toBe(2);
        expect(readFileSync(path.join(dir, 'back/sub/data.bin'))).toEqual(readFileSync(path.join(dir, 'tree/sub/data.bin')));
        if (method === 'nc') {
          expect((await host.exec("ps -eo args | grep -c '^nc -l' || true")).output.trim()).toBe('0');
        }
        await lab.close();
      });
    }
  });
}

test('telnet through a hop: run, expects and a timeout recovered', async () => {
  const { lab } = labOf();
  const host = lab.remote('innerTelnet');
  expect((await host.run('hostname')).only.output).toBe('inner\n');
  const r = await host.run('printf "Continue? "; read a; echo "answer $a"', { expects: [[/Continue\? $/, 'yes']] });
  expect(r.only.output).toContain('answer yes');
  expect((await host.run('sleep 30', { timeout: 500 })).only.timedOut).toBe(true);
  expect((await host.run('echo alive')).only.output).toBe('alive\n');
  expect((await host.exec('echo pooled')).output).toBe('pooled\n');
  await lab.close();
});

test('port forwarding works through the chain', async () => {
  const { lab } = labOf();
  const deep = lab.remote('deep');
  const forward = await deep.forwardLocal('127.0.0.1', 21);
  expect(await readBanner(forward.port)).toMatch(/^220 /);
  await lab.close();
});

test('hop forwards are cached per destination and released when unused; closing a host keeps a shared bastion up', async () => {
  const { lab, events } = labOf();
  const inner = lab.remote('inner');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-hop-cache-'));
  writeFileSync(path.join(dir, 'f'), 'x'.repeat(1000));
  await Promise.all([1, 2, 3].map((i) => inner.put(path.join(dir, 'f'), `/tmp/cache-${i}`, { method: 'ftp' })));
  const hop = lab.pathOf('inner') as HopPath;
  const forwards = await hop.activeForwards();
  // The control port is held by the FTP connection pool; every data port was released.
  expect(
    Object.entries(forwards)
      .filter(([, users]) => users > 0)
      .map(([key]) => key.split(':')[1]),
  ).toEqual(['21']);
  const deep = lab.remote('deep');
  await deep.run('true');
  await inner.close();
  expect(await hop.activeForwards()).toEqual({});
  expect(lab.remote('bastion').connections.connected).toBe(true);
  expect((await deep.run('echo still up')).only.output).toBe('still up\n');
  expect(connects(events, 'bastion')).toBe(1);
  await lab.close();
  expect(lab.remote('bastion').connections.connected).toBe(false);
});

test('the bastion down: the error names the bastion, not the target', async () => {
  const bastion = started.host('bastion');
  await bastion.stopSshd();
  try {
    const { lab } = labOf({ bastion: { ssh: { connectAttempts: 1 } } });
    // Docker's port proxy accepts and then resets or closes where a real bastion would
    // refuse; whichever way the bastion fails, the error must name it, not the target.
    const bastionPort = started.host('bastion').ports.ssh!;
    const error = await lab
      .remote('inner')
      .run('true')
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(error?.message).toMatch(new RegExp(`^bastion \\(ssh\\): .*127\\.0\\.0\\.1:${bastionPort}.*, and it is the hop to "inner"\\.`));
    expect(error?.message).not.toMatch(/^inner/);
    await lab.close();
  } finally {
    await bastion.startSshd();
  }
});

test("the inner target's sshd restarted: the next command reconnects through the still-open bastion", async () => {
  const { lab, events } = labOf();
  const inner = lab.remote('inner');
  await inner.run('true');
  await inner.exec('true');
  await started.host('inner').restartSshd();
  expect((await inner.run('echo back')).only.output).toBe('back\n');
  expect((await inner.exec('echo exec back')).output).toBe('exec back\n');
  expect(connects(events, 'inner')).toBe(2);
  expect(connects(events, 'bastion')).toBe(1);
  await lab.close();
});
