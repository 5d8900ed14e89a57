/**
 * The embedded-style board (Dropbear, BusyBox) beyond the userland matrix: nc through a
 * bastion, half-closed forwarded connections, and Dropbear's channel handling under load.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { expect, test as base } from '@playwright/test';

import { knownHostsFile, labInput } from '../../fixtures/lab/labConfig.js';
import { type Lab as StartedLab, startLab } from '../../fixtures/lab/startLab.js';
import { defineLab } from '../../src/config/defineLab.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';

const test = base.extend<object, { boardLab: StartedLab }>({
  boardLab: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
    async ({}, use) => {
      const lab = await startLab({ roles: ['board', 'bastion'] });
      await use(lab);
      await lab.stop();
    },
    { scope: 'worker', timeout: 30 * 60_000, title: 'board and bastion' },
  ],
});

/** A labwright Lab over the board (direct, and `hidden` through the bastion); closed by the caller. */
function labOf(started: StartedLab) {
  const board = started.host('board');
  // The bastion reaches the board on the front network, port 22: pin that endpoint too.
  const known = knownHostsFile(started);
  writeFileSync(
    known,
    `${readFileSync(known, 'utf8')}${[board.hostKeys.ed25519, board.hostKeys.ecdsa, board.hostKeys.rsa].map((key) => `${board.ips.front} ${key.split(' ').slice(0, 2).join(' ')}`).join('\n')}\n`,
  );
  const input = labInput(started, { board: { ssh: { knownHosts: [known] } } });
  input.hosts!.hidden = { ...input.hosts!.board!, address: board.ips.front!, hop: 'bastion', ssh: { port: 22, knownHosts: [known] } };
  const lab = new Lab(defineLab(input));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  return { lab, events, board: lab.remote('board'), hidden: lab.remote('hidden') };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test('nc through a bastion to BusyBox nc: 5 MiB both ways, the forwarded stream half-closes', async ({ boardLab }) => {
  const { lab, hidden } = labOf(boardLab);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-board-nc-'));
  const data = Buffer.from(Array.from({ length: 5 * 1024 * 1024 }, (_, i) => (i * 131 + (i >> 9)) & 0xff));
  writeFileSync(path.join(dir, 'up.bin'), data);
  // BusyBox nc -l ends its sending side at once (its stdin is /dev/null): the upload must go on.
  const up = await hidden.put(path.join(dir, 'up.bin'), '/tmp/lw-hidden-nc.bin', { method: 'nc', verify: 'sha256' });
  expect(up).toMatchObject({ bytes: data.length, verified: 'sha256' });
  await hidden.get('/tmp/lw-hidden-nc.bin', path.join(dir, 'down.bin'), { method: 'nc', verify: 'sha256' });
  expect(sha256(readFileSync(path.join(dir, 'down.bin')))).toBe(sha256(data));
  // Nothing of the listener is left: no nc, no watchdog (BusyBox has no pkill).
  expect((await boardLab.host('board').exec("ps -o args | grep -cE '^(nc -l|sleep 120)' || true")).stdout.trim()).toBe('0');
  await lab.close();
});

test('a forwarded connection still receives after the client ended its side', async ({ boardLab }) => {
  const { lab, board } = labOf(boardLab);
  // A service that answers only once its input ended: BusyBox nc running wc.
  await board.exec('nc -l -p 4100 -e wc -c </dev/null >/dev/null 2>&1 &');
  await expect.poll(async () => (await board.exec('netstat -ltn | grep -c ":4100 " || true')).output.trim()).toBe('1');
  const forward = await board.forwardLocal('127.0.0.1', 4100);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: forward.port, allowHalfOpen: true });
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
    socket.on('connect', () => socket.end('seventeen bytes!\n'));
  });
  expect(answer.trim()).toBe('17');
  await forward.close();
  await lab.close();
});

test('Dropbear: exec calls, transfers and sessions at once on one connection all complete', async ({ boardLab }) => {
  const { lab, events, board } = labOf(boardLab);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-board-mix-'));
  writeFileSync(path.join(dir, 'f.bin'), Buffer.alloc(200_000, 7));
  const work = [
    ...Array.from({ length: 30 }, (_, i) => board.exec(`echo ${i}; exit ${i % 4}`).then((r) => expect([r.output, r.exitCode]).toEqual([`${i}\n`, i % 4]))),
    board.put(path.join(dir, 'f.bin'), '/tmp/lw-mix-scp.bin', { method: 'scp' }).then((r) => expect(r.bytes).toBe(200_000)),
    board.put(path.join(dir, 'f.bin'), '/tmp/lw-mix-sftp.bin', { method: 'sftp' }).then((r) => expect(r.bytes).toBe(200_000)),
    (async () => {
      for (let i = 0; i < 5; i++) {
        const session = await board.openSession(`s${i}`);
        expect((await session.run(`echo session ${i}`)).only.output).toBe(`session ${i}\n`);
        await session.close();
      }
    })(),
  ];
  await Promise.all(work);
  // One main connection throughout: Dropbear never dropped a connection, and labwright said how
  // it runs exec there; channels that would have waited went to side connections, at most 4.
  const ssh = events.flatMap((e) => (e.type === 'connection' && e.protocol === 'ssh' ? [`${e.event} ${e.detail ?? ''}`] : []));
  const main = ssh.filter((line) => line.startsWith('connected ') && !line.startsWith('connected side connection'));
  expect(main).toHaveLength(1);
  expect(main[0]).toContain('exec channels one at a time');
  expect(ssh.filter((line) => line.startsWith('connected side connection')).length).toBeLessThanOrEqual(4);
  expect(ssh.filter((line) => line.startsWith('lost'))).toEqual([]);
  await lab.close();
});
