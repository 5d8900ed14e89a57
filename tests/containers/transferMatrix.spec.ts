/**
 * Every documented option of put() and get() (method, verify, onProgress, mode, timeout,
 * signal) on every host kind (local, SSH, telnet) and every transfer method, and the
 * transfer path rules (README "Transfer path rules"), against the real daemons of the
 * shared lab: OpenSSH (sftp, scp), vsftpd (ftp), netcat over SSH exec and over telnet.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { defineLab } from '../../src/config/defineLab.js';
import type { TransferMethod } from '../../src/config/schema.js';
import type { LabEvent } from '../../src/host/events.js';
import type { Host } from '../../src/host/host.js';
import { Lab } from '../../src/host/lab.js';
import type { TransferOptions } from '../../src/transfer/types.js';
import { TransferError } from '../../src/util/errors.js';
import { expect, labInput, type StartedLab, test } from '../helpers/containerLab.js';
import { type FarSide, farSide, partialFiles } from '../helpers/transferSides.js';

/** Host kinds and the methods each offers. */
const MATRIX: Array<{ host: string; methods: Array<TransferMethod | undefined> }> = [
  { host: 'local', methods: [undefined] },
  { host: 'target', methods: ['sftp', 'scp', 'ftp', 'nc'] },
  { host: 'telnet', methods: ['ftp', 'nc'] },
];

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function setup(started: StartedLab, hostName: string) {
  const lab = new Lab(defineLab(labInput(started)));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  const host: Host = lab.host(hostName);
  return { lab, host, events, side: farSide(started, hostName) };
}

/** The failure of a transfer that must fail. */
async function failure(promise: Promise<unknown>): Promise<TransferError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the transfer should have failed').toBeInstanceOf(TransferError);
  return error as TransferError;
}

/** Mode bits of a file on the far side, octal text. */
async function modeOf(side: FarSide, file: string): Promise<string> {
  return (await side.sh(`stat -c %a ${file}`)).stdout;
}

for (const { host: hostName, methods } of MATRIX) {
  for (const method of methods) {
    const label = method ? `${hostName} ${method}` : `${hostName} copy`;

    test(`${label}: method, verify, onProgress, mode, timeout and signal`, async ({ sharedLab }, testInfo) => {
      const { lab, host, events, side } = setup(sharedLab, hostName);
      const remote = side.scratch('opts');
      const local = testInfo.outputPath('local');
      mkdirSync(local, { recursive: true });
      const data = randomBytes(700_000);
      writeFileSync(path.join(local, 'data.bin'), data);
      writeFileSync(path.join(local, 'tool.sh'), '#!/bin/sh\necho tool\n');
      chmodSync(path.join(local, 'tool.sh'), 0o755);
      const base: TransferOptions = method ? { method } : {};
      try {
        // Every option at once: the file lands with the asked mode, verified by sha256, progress reaching the total.
        const progress: Array<[number, number]> = [];
        const put = await host.put(path.join(local, 'data.bin'), `${remote}/data.bin`, {
          ...base,
          mode: 0o640,
          verify: 'sha256',
          onProgress: (done, total) => void progress.push([done, total]),
          timeout: 30_000,
          signal: new AbortController().signal,
        });
        expect(put).toMatchObject({ direction: 'put', files: 1, bytes: data.length, verified: 'sha256', method: method ?? 'copy' });
        expect(progress.at(-1)).toEqual([data.length, data.length]);
        expect(progress.map(([done]) => done)).toEqual([...progress.map(([done]) => done)].sort((a, b) => a - b));
        expect(await modeOf(side, `${remote}/data.bin`)).toBe('640');
        expect((await side.sh(`sha256sum < ${remote}/data.bin`)).stdout.slice(0, 64)).toBe(sha256(data));

        // Without `mode` a file keeps its source's bits, both ways.
        await host.put(path.join(local, 'tool.sh'), `${remote}/tool.sh`, base);
        expect(await modeOf(side, `${remote}/tool.sh`)).toBe('755');
        await host.get(`${remote}/tool.sh`, path.join(local, 'back/tool.sh'), base);
        expect(statSync(path.join(local, 'back/tool.sh')).mode & 0o777).toBe(0o755);
        const got = await host.get(`${remote}/data.bin`, path.join(local, 'back/data.bin'), { ...base, mode: 0o600, verify: 'sha256', timeout: 30_000 });
        expect(got).toMatchObject({ direction: 'get', bytes: data.length, verified: 'sha256' });
        expect(statSync(path.join(local, 'back/data.bin')).mode & 0o777).toBe(0o600);
        expect(readFileSync(path.join(local, 'back/data.bin'))).toEqual(data);
        for (const verify of ['none', 'size'] as const) {
          expect((await host.put(path.join(local, 'data.bin'), `${remote}/v-${verify}.bin`, { ...base, verify })).verified).toBe(verify);
          expect((await host.get(`${remote}/v-${verify}.bin`, path.join(local, `v-${verify}.bin`), { ...base, verify })).verified).toBe(verify);
        }

        // An aborted signal: nothing happens, nothing lands.
        const early = await failure(
          host.put(path.join(local, 'data.bin'), `${remote}/early.bin`, { ...base, signal: AbortSignal.abort(new Error('not today')) }),
        );
        expect(early.kind).toBe('aborted');
        expect(early.message).toContain('it was aborted (not today)');
        expect((await side.sh(`test -e ${remote}/early.bin`)).code).not.toBe(0);

        // Aborted while bytes move: the destination never holds a partial file under its name, and no partial file is left.
        for (const direction of ['put', 'get'] as const) {
          const controller = new AbortController();
          const options = { ...base, onProgress: () => controller.abort(new Error('stop now')), signal: controller.signal };
          const stopped = await failure(
            direction === 'put'
              ? host.put(path.join(local, 'data.bin'), `${remote}/mid.bin`, options)
              : host.get(`${remote}/data.bin`, path.join(local, 'mid/data.bin'), options),
          );
          expect(stopped.kind, direction).toBe('aborted');
          expect(stopped.message, direction).toMatch(
            new RegExp(
              `^${hostName} \\(${method ?? 'local'}\\): ${direction} of .* failed after \\d+ of ${data.length} bytes: it was aborted \\(stop now\\)\\.`,
            ),
          );
          expect(stopped.message, 'partial files were removed').not.toContain('Partial files remain');
        }
        expect((await side.sh(`test -e ${remote}/mid.bin`)).code).not.toBe(0);
        expect(existsSync(path.join(local, 'mid/data.bin'))).toBe(false);
        expect(await partialFiles(side, remote)).toEqual([]);
        expect(readdirSync(path.join(local, 'mid'))).toEqual([]);

        // One transfer event per call, from the host layer, whatever the method: 8 that moved files, 3 aborted.
        const transfers = events.filter((event) => event.type === 'transfer');
        expect(transfers.map((event) => event.method)).toEqual(Array(11).fill(method ?? 'copy'));
        expect(transfers.filter((event) => event.bytes !== undefined)).toHaveLength(8);
        expect(transfers.filter((event) => event.error?.includes('it was aborted'))).toHaveLength(3);
      } finally {
        await lab.close();
        await side.sh(`rm -rf ${remote}`);
      }
    });

    test(`${label}: transfer path rules`, async ({ sharedLab }, testInfo) => {
      const { lab, host, side } = setup(sharedLab, hostName);
      const remote = side.scratch('paths');
      const id = path.basename(remote);
      const local = testInfo.outputPath('local');
      mkdirSync(path.join(local, 'tree/sub'), { recursive: true });
      writeFileSync(path.join(local, 'one.txt'), 'one\n');
      writeFileSync(path.join(local, 'two.txt'), 'two\n');
      writeFileSync(path.join(local, 'tree/a.txt'), 'a\n');
      writeFileSync(path.join(local, 'tree/sub/b.txt'), 'b\n');
      const base: TransferOptions = method ? { method } : {};
      const cat = async (file: string) => (await side.sh(`cat ${file}`)).stdout;
      try {
        // ~/ and relative paths start at the login directory; missing parents are created.
        await host.put(path.join(local, 'one.txt'), `~/${id}/home/one.txt`, base);
        expect(await cat(`${side.home}/${id}/home/one.txt`)).toBe('one');
        if (hostName !== 'local') {
          await host.put(path.join(local, 'two.txt'), `${id}/rel/two.txt`, base);
          expect(await cat(`${side.home}/${id}/rel/two.txt`)).toBe('two');
          await host.get(`${id}/rel/two.txt`, path.join(local, 'got/rel.txt'), base);
          expect(readFileSync(path.join(local, 'got/rel.txt'), 'utf8')).toBe('two\n');
        }
        await host.get(`~/${id}/home/one.txt`, path.join(local, 'got/deeper/missing/one.txt'), base);
        expect(readFileSync(path.join(local, 'got/deeper/missing/one.txt'), 'utf8')).toBe('one\n');
        await host.put(path.join(local, 'one.txt'), `${remote}/a/b/c/one.txt`, base);
        expect(await cat(`${remote}/a/b/c/one.txt`)).toBe('one');

        // An existing file is replaced; an existing directory (or a name ending in /) takes the file under its own name.
        await host.put(path.join(local, 'two.txt'), `${remote}/a/b/c/one.txt`, base);
        expect(await cat(`${remote}/a/b/c/one.txt`)).toBe('two');
        await host.put(path.join(local, 'one.txt'), `${remote}/a/b`, base);
        expect(await cat(`${remote}/a/b/one.txt`)).toBe('one');
        await host.put(path.join(local, 'two.txt'), `${remote}/new-dir/`, base);
        expect(await cat(`${remote}/new-dir/two.txt`)).toBe('two');
        await host.get(`${remote}/a/b/one.txt`, path.join(local, 'got'), base);
        expect(readFileSync(path.join(local, 'got/one.txt'), 'utf8')).toBe('one\n');

        // A directory lands in the destination itself and merges with what is there.
        await host.put(path.join(local, 'tree'), `${remote}/tree`, base);
        await host.put(path.join(local, 'one.txt'), `${remote}/tree/sub/extra.txt`, base);
        await host.put(path.join(local, 'tree'), `${remote}/tree`, base);
        expect((await side.sh(`cd ${remote}/tree && find . -type f | sort`)).stdout.split('\n')).toEqual(['./a.txt', './sub/b.txt', './sub/extra.txt']);
        const back = await host.get(`${remote}/tree`, path.join(local, 'tree-back'), base);
        expect(back.files).toBe(3);
        expect(readFileSync(path.join(local, 'tree-back/sub/b.txt'), 'utf8')).toBe('b\n');

        // What cannot be done is refused with the reason as a kind.
        expect((await failure(host.put(path.join(local, 'tree'), `${remote}/a/b/one.txt`, base))).kind).toBe('not-a-directory');
        expect((await failure(host.put(path.join(local, 'one.txt'), `${remote}/a/b/one.txt/x.txt`, base))).kind).toBe('not-a-directory');
        const missing = await failure(host.get(`${remote}/no/such/file`, path.join(local, 'x'), base));
        expect(missing.kind).toBe('missing');
        expect(missing.message).toMatch(
          new RegExp(`^${hostName} \\(${method ?? 'local'}\\): get of ${remote}/no/such/file to .* failed: .*no such file or directory`),
        );
        expect((await failure(host.put(path.join(local, 'no-such-local'), `${remote}/x`, base))).kind).toBe('missing');
        if (hostName !== 'local') {
          // The runner runs as root, where nothing is denied; on the device the user is not root.
          await side.sh(`mkdir -p ${remote}/locked && chmod 555 ${remote}/locked && echo secret > ${remote}/unreadable && chmod 000 ${remote}/unreadable`);
          const readDenied = await failure(host.get(`${remote}/unreadable`, path.join(local, 'u'), base));
          expect(readDenied.kind).toBe('denied');
          expect(readDenied.message).toContain(`${remote}/unreadable on the device: permission denied`);
          expect((await failure(host.put(path.join(local, 'one.txt'), `${remote}/locked/one.txt`, base))).kind).toBe('denied');
          expect((await failure(host.put(path.join(local, 'one.txt'), `${remote}/locked/sub/one.txt`, base))).kind).toBe('denied');
          expect((await failure(host.put(path.join(local, 'one.txt'), '/root/lw-denied/one.txt', base))).kind).toBe('denied');
        }
        expect(await partialFiles(side, remote)).toEqual([]);
      } finally {
        await lab.close();
        await side.sh(`chmod -R u+rwx ${remote} 2>/dev/null; rm -rf ${remote} ${side.home}/${id}`);
      }
    });
  }
}

test('options a host kind cannot honour are refused with a clear error', async ({ sharedLab }, testInfo) => {
  const { lab, host } = setup(sharedLab, 'local');
  const file = testInfo.outputPath('f.txt');
  writeFileSync(file, 'x');
  const local = await failure(host.put(file, testInfo.outputPath('g.txt'), { method: 'sftp' }));
  expect(local.kind).toBe('unsupported');
  expect(local.message).toMatch(
    /^local \(local\): put with method "sftp": the local host copies files on the runner; transfer methods are for remote hosts\. Leave `method` out/,
  );
  // Values no method can honour, on every host kind, before any connection.
  for (const [name, method] of [
    ['local', undefined],
    ['target', 'sftp'],
    ['telnet', 'nc'],
  ] as const) {
    const options: TransferOptions = method ? { method } : {};
    expect((await failure(lab.host(name).put(file, '/tmp/lw-bad.txt', { ...options, timeout: 0 }))).kind).toBe('unsupported');
    expect((await failure(lab.host(name).get('/tmp/lw-bad.txt', testInfo.outputPath('bad'), { ...options, mode: 0o20000 }))).kind).toBe('unsupported');
  }
  const telnet = lab.host('telnet');
  for (const method of ['sftp', 'scp'] as const) {
    const refused = await failure(telnet.put(file, '/tmp/lw-no-ssh.txt', { method }));
    expect(refused.kind).toBe('unsupported');
    expect(refused.message).toMatch(
      new RegExp(
        `^telnet \\(${method}\\): ${method} needs an SSH server on the device, and "telnet" is a telnet host whose SSH at 127\\.0\\.0\\.1:22 cannot be used: .*Use method "ftp" or "nc"`,
      ),
    );
  }
  await lab.close();
});

test('concurrent sftp and scp transfers beyond the channel budget wait for a channel and all complete', async ({ sharedLab }, testInfo) => {
  const lab = new Lab(defineLab(labInput(sharedLab, { target: { ssh: { maxSessions: 2 } } })));
  const target = lab.remote('target');
  const side = farSide(sharedLab, 'target');
  const remote = side.scratch('budget');
  const data = randomBytes(1_000_000);
  const file = testInfo.outputPath('data.bin');
  writeFileSync(file, data);
  try {
    // The shell holds one of the two channels throughout; twelve transfers share the other.
    await target.run('true');
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => target.put(file, `${remote}/${i}.bin`, { method: i % 2 === 0 ? 'sftp' : 'scp', verify: 'sha256' })),
    );
    expect(results.map((r) => r.bytes)).toEqual(Array(12).fill(data.length));
    expect((await side.sh(`cat ${remote}/*.bin | sha256sum`)).stdout.slice(0, 64)).toBe(sha256(Buffer.concat(Array(12).fill(data))));
    expect((await target.run('echo shell still here')).only.output).toBe('shell still here\n');
    // A finished transfer's idle SFTP session gives its channel back: commands get it.
    const execs = await Promise.all(Array.from({ length: 5 }, (_, i) => target.exec(`echo ${i}`, { timeout: 20_000 })));
    expect(execs.map((r) => r.output)).toEqual(['0\n', '1\n', '2\n', '3\n', '4\n']);
  } finally {
    await lab.close();
    await side.sh(`rm -rf ${remote}`);
  }
});
