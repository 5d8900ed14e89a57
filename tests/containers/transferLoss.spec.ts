/**
 * A device that dies under a transfer, for every method, directly and through a bastion: the
 * device is paused (a hung board: nothing answers, no connection closes) or its daemon is
 * killed (sshd for sftp and scp, the FTP session for ftp, the netcat for nc) while bytes move.
 * Every transfer must settle with a TransferError naming host, method, paths, bytes done and
 * the cause, and no file may exist under the destination's name; partial files are removed
 * or named in the error.
 *
 * Sources are sparse 8 GiB files (no disk used for the part never sent), so the disruption
 * always lands mid-transfer; it is triggered from onProgress once 8 MiB have moved.
 */
import { existsSync, mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { defineLab } from '../../src/config/defineLab.js';
import type { TransferMethod } from '../../src/config/schema.js';
import { Lab } from '../../src/host/lab.js';
import { TransferError, type TransferFailure } from '../../src/util/errors.js';
import { expect, labInput, privateLab, type StartedLab, test } from '../helpers/containerLab.js';
import { farSide, partialFiles } from '../helpers/transferSides.js';

const GiB = 1024 ** 3;
const TRIGGER_BYTES = 8 * 1024 * 1024;
/** Idle timeout of the transfers: methods on their own TCP connections (ftp, nc) notice a hung device by it. */
const IDLE_MS = 3_000;

let started: StartedLab;
test.beforeAll(async () => {
  started = await privateLab({ roles: ['target', 'bastion', 'inner'] });
});
test.afterAll(async () => {
  await started?.stop();
});

/** A lab whose devices' SSH connections notice a silent peer within about 3 s (1 s keepalive, 2 unanswered). */
function labOf() {
  const keepalive = { ssh: { keepaliveInterval: 1_000, keepaliveCountMax: 2 } };
  return new Lab(defineLab(labInput(started, { target: keepalive, inner: keepalive })));
}

type Disruption = 'pause' | 'kill';

/** What each disruption does to the device, per method. */
function disrupt(host: 'target' | 'inner', method: TransferMethod, how: Disruption): { act: () => Promise<void>; restore: () => Promise<void> } {
  const device = started.host(host);
  if (how === 'pause') return { act: () => device.pause(), restore: () => device.unpause() };
  const kill: Record<TransferMethod, () => Promise<void>> = {
    sftp: () => device.restartSshd(),
    scp: () => device.restartSshd(),
    // vsftpd runs one process per session as the logged-in user; its listener runs as root.
    ftp: async () => void (await device.exec('pkill -KILL -u lab -x vsftpd')),
    nc: async () => void (await device.exec('pkill -KILL -x nc')),
  };
  return { act: kill[method], restore: async () => {} };
}

/** Kinds a transfer may fail with, per disruption and method. */
function expectedKinds(how: Disruption, method: TransferMethod, direction: 'put' | 'get'): TransferFailure[] {
  if (how === 'pause') return method === 'sftp' || method === 'scp' ? ['lost'] : ['stalled'];
  // A killed daemon closes its connections: the transfer sees the loss, or (a download cut
  // off with a clean end of stream) the verification sees fewer bytes than announced.
  return direction === 'get' ? ['lost', 'incomplete'] : ['lost'];
}

for (const how of ['pause', 'kill'] as const) {
  for (const host of ['target', 'inner'] as const) {
    for (const method of ['sftp', 'scp', 'ftp', 'nc'] as const) {
      for (const direction of ['put', 'get'] as const) {
        const where = host === 'target' ? 'directly' : 'through a bastion';
        // eslint-disable-next-line no-empty-pattern -- uses a private lab, no fixtures
        test(`${how}: ${method} ${direction} ${where} settles with an error naming the transfer, and nothing lands under the final name`, async ({}, testInfo) => {
          const lab = labOf();
          const dut = lab.remote(host);
          const side = farSide(started, host);
          const remoteDir = side.scratch('loss');
          const localDir = testInfo.outputPath('local');
          const { act, restore } = disrupt(host, method, how);
          let acting: Promise<void> | undefined;
          try {
            // Connected and warm before the transfer: the disruption hits a transfer, not a login.
            await dut.exec(`mkdir -p ${remoteDir}`);
            const localFile = path.join(localDir, 'big.bin');
            const remoteFile = `${remoteDir}/big.bin`;
            mkdirSync(localDir, { recursive: true });
            if (direction === 'put') {
              writeFileSync(localFile, '');
              truncateSync(localFile, 8 * GiB);
            } else {
              expect((await side.sh(`truncate -s 8G ${remoteFile}`)).code).toBe(0);
            }
            const final = direction === 'put' ? remoteFile : path.join(localDir, 'back.bin');
            const options = {
              method,
              timeout: method === 'sftp' || method === 'scp' ? 60_000 : IDLE_MS,
              onProgress: (done: number) => {
                if (done >= TRIGGER_BYTES) acting ??= act();
              },
            };
            const error = await (direction === 'put' ? dut.put(localFile, remoteFile, options) : dut.get(remoteFile, final, options)).then(
              () => undefined,
              (e: unknown) => e,
            );
            await acting;
            expect(acting, 'the disruption happened mid-transfer').toBeDefined();
            expect(error).toBeInstanceOf(TransferError);
            const failure = error as TransferError;
            testInfo.annotations.push({ type: 'error', description: failure.message });
            expect(expectedKinds(how, method, direction)).toContain(failure.kind);
            const [from, to] = direction === 'put' ? [localFile, remoteFile] : [remoteFile, final];
            expect(failure.message.startsWith(`${host} (${method}): ${direction} of ${from} to ${to} failed`), failure.message).toBe(true);
            const done = /failed after (\d+) of (\d+) bytes: /.exec(failure.message);
            expect(done, `bytes done in: ${failure.message}`).not.toBeNull();
            expect(Number(done![1])).toBeGreaterThan(0);
            await restore();
            // Nothing under the final name, on either side; partial files removed, or named.
            if (direction === 'put') expect((await side.sh(`test -e ${final}`)).code).not.toBe(0);
            else expect(existsSync(final)).toBe(false);
            const leftDevice = await partialFiles(side, remoteDir);
            const leftRunner = readdirSync(localDir)
              .filter((name) => name.includes('.lw-'))
              .map((name) => path.join(localDir, name));
            for (const left of [...leftDevice, ...leftRunner]) expect(failure.message, `${left} is named`).toContain(left);
          } finally {
            await acting?.catch(() => undefined);
            await restore().catch(() => undefined);
            await lab.close();
            await side.sh(`rm -rf ${remoteDir}`);
          }
        });
      }
    }
  }
}

// eslint-disable-next-line no-empty-pattern -- uses a private lab, no fixtures
test('after the connection was lost, the next transfer reconnects instead of reusing a dead session', async ({}, testInfo) => {
  const lab = labOf();
  const target = lab.remote('target');
  const file = testInfo.outputPath('small.bin');
  writeFileSync(file, 'x'.repeat(100_000));
  try {
    for (const method of ['sftp', 'scp'] as const) {
      await target.put(file, `/tmp/lw-reconnect.${method}`, { method });
      await started.host('target').restartSshd();
      const again = await target.put(file, `/tmp/lw-reconnect.${method}`, { method });
      expect(again.bytes).toBe(100_000);
    }
  } finally {
    await lab.close();
  }
});
