/**
 * FTP transfers against the real vsftpd of the container lab (role `target`, user `lab`):
 * byte-exact files, directory trees, concurrency beyond the pool, FTPS, clear errors, and
 * passive data connections going through the NetworkPath.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';

import { FTPError } from 'basic-ftp';

import type { RemoteHostConfig } from '../../src/config/defineLab.js';
import { defineLab, type FtpOptions, type HostInput } from '../../src/config/index.js';
import { type FtpConnectionEvent, FtpTransfer, type FtpTransferSetup } from '../../src/transfer/ftp.js';
import { openFtpConnection } from '../../src/transfer/ftp/connect.js';
import { remoteFileSize } from '../../src/transfer/ftp/remote.js';
import type { RemoteRunner } from '../../src/transfer/types.js';
import { directPath, type NetworkPath } from '../../src/transport/network.js';
import { ConnectionError, TransferError } from '../../src/util/errors.js';
import { expect, labInput, privateLab, type StartedLab, test } from '../helpers/containerLab.js';
import { RecordingPath, TlsTerminatingPath } from '../helpers/ftpPaths.js';

const MiB = 1024 * 1024;
/** A small local file to transfer: this spec. */
const thisFile = fileURLToPath(import.meta.url);

/** The lab's `target` host as labwright sees it, with FTP option and host overrides. */
function targetConfig(lab: StartedLab, ftp: Partial<FtpOptions> = {}, host: Partial<HostInput> = {}): RemoteHostConfig {
  const config = defineLab(labInput(lab, { target: { ...host, ftp } })).hosts.target;
  if (!config) throw new Error('no target host in the lab');
  return config;
}

/** An FtpTransfer for `target`; closed by the caller. */
function ftpTo(
  lab: StartedLab,
  ftp: Partial<FtpOptions> = {},
  extras: Partial<FtpTransferSetup> & { path?: NetworkPath; host?: Partial<HostInput> } = {},
): FtpTransfer {
  const config = targetConfig(lab, ftp, extras.host);
  const { path: networkPath = directPath, host: _host, ...rest } = extras;
  const user = config.ftp.user ?? config.user;
  return new FtpTransfer({
    host: config.name,
    address: rest.address ?? config.address,
    options: config.ftp,
    user,
    password: config.users[user]?.password,
    path: networkPath,
    ...rest,
  });
}

/** Runs commands on the target container as the FTP user (for sha256 verification). */
function labRunner(lab: StartedLab): RemoteRunner {
  return {
    async run(command, { timeout }) {
      const result = await lab.host('target').exec(command, { timeoutMs: timeout, user: 'lab' });
      return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
    },
  };
}

async function writeRandomFile(file: string, size: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const chunks: Buffer[] = [];
  for (let left = size; left > 0; left -= MiB) chunks.push(randomBytes(Math.min(MiB, left)));
  await writeFile(file, Buffer.concat(chunks));
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function remoteSha256(lab: StartedLab, file: string): Promise<string> {
  const result = await lab.host('target').exec(`sha256sum '${file}'`, { timeoutMs: 60_000 });
  expect(result.exitCode, result.output).toBe(0);
  return result.stdout.split(' ')[0] ?? '';
}

/** `relative path → sha256` of every file under `root` on the runner. */
async function localTree(root: string, relative = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(path.join(root, relative), { withFileTypes: true })) {
    const rel = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      out[`${rel}/`] = 'dir';
      Object.assign(out, await localTree(root, rel));
    } else out[rel] = await sha256(path.join(root, rel));
  }
  return out;
}

/** The same for a tree on the target. */
async function remoteTree(lab: StartedLab, root: string): Promise<Record<string, string>> {
  const result = await lab
    .host('target')
    .exec(
      `cd '${root}' && find . -mindepth 1 -type d -printf '%P/\\tdir\\n' && find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sed -E 's#^([0-9a-f]+)  \\./(.*)$#\\2\\t\\1#'`,
    );
  expect(result.exitCode, result.output).toBe(0);
  const out: Record<string, string> = {};
  for (const line of result.stdout.split('\n').filter(Boolean)) {
    const [name, value] = line.split('\t');
    if (name !== undefined && value !== undefined) out[name] = value;
  }
  return out;
}

/** A remote scratch directory for one test. */
function scratch(testId: string): string {
  return `/tmp/lw-ftp-${testId.replace(/[^A-Za-z0-9]/g, '')}`;
}

test.describe('FTP transfers against vsftpd', () => {
  test('puts and gets a 100 MiB file byte-exact', async ({ sharedLab: lab }, testInfo) => {
    test.setTimeout(180_000);
    const local = testInfo.outputPath('big.bin');
    const back = testInfo.outputPath('back/big.bin');
    const remote = `${scratch(testInfo.testId)}/big.bin`;
    await writeRandomFile(local, 100 * MiB);
    const ftp = ftpTo(lab);
    try {
      const put = await ftp.put(local, remote);
      expect(put).toMatchObject({ direction: 'put', method: 'ftp', files: 1, bytes: 100 * MiB, verified: 'size' });
      const localSum = await sha256(local);
      expect(await remoteSha256(lab, remote)).toBe(localSum);

      const get = await ftp.get(remote, back);
      expect(get).toMatchObject({ direction: 'get', files: 1, bytes: 100 * MiB, verified: 'size' });
      expect(await sha256(back)).toBe(localSum);
    } finally {
      await ftp.close();
      await rm(local, { force: true });
      await rm(back, { force: true });
      await lab.host('target').exec(`rm -rf '${scratch(testInfo.testId)}'`);
    }
  });

  test('puts and gets directory trees with nested, empty and hidden files', async ({ sharedLab: lab }, testInfo) => {
    const src = testInfo.outputPath('tree');
    const files: Record<string, Buffer> = {
      'top.txt': Buffer.from('top\n'),
      'empty.bin': Buffer.alloc(0),
      '.hidden': Buffer.from('dot file\n'),
      'with space.txt': Buffer.from('spaces in names\n'),
      'a/b/c/deep.bin': randomBytes(300_000),
      'a/b/sibling.txt': Buffer.from('x'.repeat(10_000)),
      'a/empty-too': Buffer.alloc(0),
    };
    for (const [name, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(src, name)), { recursive: true });
      await writeFile(path.join(src, name), body);
    }
    await mkdir(path.join(src, 'empty-dir/nested-empty'), { recursive: true });
    const remote = `${scratch(testInfo.testId)}/deeper/tree`; // parents do not exist yet
    const back = testInfo.outputPath('back');
    const ftp = ftpTo(lab);
    try {
      const put = await ftp.put(src, remote);
      const total = Object.values(files).reduce((sum, body) => sum + body.length, 0);
      expect(put).toMatchObject({ files: Object.keys(files).length, bytes: total, verified: 'size' });
      const expected = await localTree(src);
      expect(expected['empty-dir/nested-empty/']).toBe('dir');
      expect(await remoteTree(lab, remote)).toEqual(expected);

      const get = await ftp.get(remote, back);
      expect(get).toMatchObject({ files: Object.keys(files).length, bytes: total });
      expect(await localTree(back)).toEqual(expected);
      expect((await stat(path.join(back, 'empty.bin'))).size).toBe(0);

      // Putting the same tree again merges into the existing directories.
      await expect(ftp.put(src, remote)).resolves.toMatchObject({ files: Object.keys(files).length });
    } finally {
      await ftp.close();
      await lab.host('target').exec(`rm -rf '${scratch(testInfo.testId)}'`);
    }
  });

  test('concurrent transfers beyond the pool size all complete correctly', async ({ sharedLab: lab }, testInfo) => {
    const count = 7;
    const ftp = ftpTo(lab, { poolSize: 2 });
    const dir = scratch(testInfo.testId);
    try {
      const locals = await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const file = testInfo.outputPath(`f${i}.bin`);
          await writeRandomFile(file, 2 * MiB + i * 1000);
          return { file, sum: await sha256(file), remote: `${dir}/f${i}.bin`, back: testInfo.outputPath(`back/f${i}.bin`) };
        }),
      );
      const puts = await Promise.all(locals.map((f) => ftp.put(f.file, f.remote)));
      expect(puts.map((r) => r.bytes)).toEqual(locals.map((_, i) => 2 * MiB + i * 1000));
      const gets = await Promise.all(locals.map((f) => ftp.get(f.remote, f.back)));
      expect(gets.every((r) => r.verified === 'size')).toBe(true);
      for (const f of locals) {
        expect(await remoteSha256(lab, f.remote)).toBe(f.sum);
        expect(await sha256(f.back)).toBe(f.sum);
      }
      expect(ftp.stats).toMatchObject({ size: 2, busy: 0, waiting: 0, peakBusy: 2 });
      expect(ftp.stats.created).toBeLessThanOrEqual(2);
    } finally {
      await ftp.close();
      await lab.host('target').exec(`rm -rf '${dir}'`);
    }
  });

  test('FTPS explicit encrypts control and data connections', async ({ sharedLab: lab }, testInfo) => {
    const config = targetConfig(lab);
    const recording = new RecordingPath('ftp.lab.invalid');
    const ftp = ftpTo(lab, { secure: 'explicit', allowUnauthorizedTls: true }, { path: recording, address: 'ftp.lab.invalid' });
    const local = testInfo.outputPath('tls.bin');
    const back = testInfo.outputPath('tls-back.bin');
    const remote = `${scratch(testInfo.testId)}/tls.bin`;
    await writeRandomFile(local, 5 * MiB);
    try {
      await ftp.put(local, remote);
      await ftp.get(remote, back);
      expect(await sha256(back)).toBe(await sha256(local));
      const { control, data } = recording.split(config.ftp.port);
      expect(control).toHaveLength(1);
      // Data connections start with a TLS handshake record (0x16); plain FTP data would not.
      expect(data.length).toBeGreaterThanOrEqual(2);
      for (const record of data) expect(record.firstBytes).toEqual([0x16]);
    } finally {
      await ftp.close();
      await recording.dispose();
      await lab.host('target').exec(`rm -rf '${scratch(testInfo.testId)}'`);
    }
  });

  test('FTPS implicit: TLS from the first byte on control and data connections', async ({ sharedLab: lab }, testInfo) => {
    // vsftpd of the lab speaks explicit FTPS only; TLS terminators in front of its control
    // and data ports (with its own certificate) make an implicit-FTPS server of it.
    const target = lab.host('target');
    const credentials = {
      cert: (await target.exec('cat /etc/ssl/certs/labwright-ftp.pem')).stdout,
      key: (await target.exec('cat /etc/ssl/private/labwright-ftp.key')).stdout,
    };
    const terminator = new TlsTerminatingPath('ftps.lab.invalid', credentials);
    const ftp = ftpTo(lab, { secure: 'implicit', allowUnauthorizedTls: true }, { path: terminator, address: 'ftps.lab.invalid' });
    const local = testInfo.outputPath('implicit.bin');
    const back = testInfo.outputPath('implicit-back.bin');
    const remote = `${scratch(testInfo.testId)}/implicit.bin`;
    await writeRandomFile(local, 3 * MiB);
    try {
      await ftp.put(local, remote);
      await ftp.get(remote, back);
      expect(await sha256(back)).toBe(await sha256(local));
      expect(await remoteSha256(lab, remote)).toBe(await sha256(local));
      // Control connection and every data connection completed a TLS handshake.
      expect(terminator.records.length).toBeGreaterThanOrEqual(3);
      expect(terminator.records.every((r) => r.handshakes === 1)).toBe(true);
    } finally {
      await ftp.close();
      terminator.dispose();
      await target.exec(`rm -rf '${scratch(testInfo.testId)}'`);
    }
  });

  // eslint-disable-next-line no-empty-pattern -- uses a private lab, no fixtures
  test('FTPS explicit works with vsftpd requiring TLS session reuse on data connections (its default)', async ({}, testInfo) => {
    test.setTimeout(120_000);
    // The shared lab runs require_ssl_reuse=NO; real devices keep vsftpd's default YES, where
    // a data connection that does not resume the control connection's session gets 522.
    const lab = await privateLab({ roles: ['target'] });
    try {
      const target = lab.host('target');
      const restarted = await target.exec(
        `sed -i 's/^require_ssl_reuse=NO/require_ssl_reuse=YES/' /etc/vsftpd.conf && grep -qx 'require_ssl_reuse=YES' /etc/vsftpd.conf && ` +
          // The entrypoint restarts vsftpd when it dies; it then reads the changed config.
          `kill -KILL $(pgrep -u root -x vsftpd) && sleep 0.5 && for i in $(seq 50); do ss -ltn | grep -q ':21 ' && exit 0; sleep 0.2; done; exit 1`,
      );
      expect(restarted.exitCode, restarted.output).toBe(0);
      const ftp = ftpTo(lab, { secure: 'explicit', allowUnauthorizedTls: true, poolSize: 2 });
      const local = testInfo.outputPath('reuse.bin');
      await writeRandomFile(local, 2 * MiB);
      try {
        const results = await Promise.all([0, 1, 2, 3].map((i) => ftp.put(local, `/tmp/reuse/${i}.bin`)));
        expect(results.every((r) => r.bytes === 2 * MiB)).toBe(true);
        await ftp.get('/tmp/reuse', testInfo.outputPath('reuse-back'));
        expect(await sha256(testInfo.outputPath('reuse-back/3.bin'))).toBe(await sha256(local));
      } finally {
        await ftp.close();
      }

      // Control: the same client without session resumption is refused, so reuse is enforced.
      const config = targetConfig(lab, { secure: 'explicit', allowUnauthorizedTls: true });
      const conn = await openFtpConnection({
        host: 'target',
        address: config.address,
        port: config.ftp.port,
        secure: 'explicit',
        allowUnauthorizedTls: true,
        user: 'lab',
        password: config.users.lab?.password,
        connectTimeout: 10_000,
        idleTimeout: 10_000,
        path: directPath,
      });
      try {
        Object.defineProperty(conn.client.ftp, 'tlsSessionStore', { get: () => undefined, set: () => {} });
        (conn.client.ftp.socket as TLSSocket).getSession = () => undefined;
        await expect(conn.client.downloadTo(new PassThrough(), '/tmp/reuse/0.bin')).rejects.toThrow();
      } finally {
        await conn.close();
      }
    } finally {
      await lab.stop();
    }
  });

  test('FTPS with a self-signed certificate is refused unless allowUnauthorizedTls', async ({ sharedLab: lab }) => {
    const ftp = ftpTo(lab, { secure: 'explicit' });
    try {
      const error = await ftp.get('/etc/hostname', '/dev/null').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).kind).toBe('host-key');
      expect((error as Error).message).toMatch(/^target \(ftp\): the TLS certificate of the FTP server at 127\.0\.0\.1:\d+ was rejected/);
      expect((error as Error).message).toContain('allowUnauthorizedTls');
    } finally {
      await ftp.close();
    }
  });

  test('a refused login is a clear auth error naming host, user and reply', async ({ sharedLab: lab }) => {
    const wrong = 'not-the-password-42';
    const ftp = ftpTo(lab, {}, { password: wrong });
    try {
      const error = await ftp.put(thisFile, 'never.txt').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionError);
      const message = (error as Error).message;
      expect((error as ConnectionError).kind).toBe('auth');
      expect((error as ConnectionError).transient).toBe(false);
      expect(message).toMatch(/^target \(ftp\): login as "lab" at 127\.0\.0\.1:\d+ refused: "530 Login incorrect\."/);
      expect(message).toContain('Check the password of user "lab"');
      expect(message).not.toContain(wrong);
    } finally {
      await ftp.close();
    }
  });

  test('a refused login fails queued transfers at once instead of logging in for each', async ({ sharedLab: lab }) => {
    const target = lab.host('target');
    const failures = async () => Number((await target.exec("grep -c 'FAIL LOGIN' /var/log/vsftpd.log || true")).stdout.trim() || '0');
    const before = await failures();
    const ftp = ftpTo(lab, { poolSize: 2 }, { password: 'also-wrong-17' });
    try {
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => ftp.get(`/tmp/x${i}`, '/dev/null')));
      for (const result of results) {
        expect(result.status).toBe('rejected');
        expect((result as PromiseRejectedResult).reason).toMatchObject({ kind: 'auth' });
      }
      await expect.poll(failures).toBeGreaterThan(before);
      expect((await failures()) - before).toBeLessThanOrEqual(2);
    } finally {
      await ftp.close();
    }
  });

  test('a connection refused names host, address and what to do', async ({ sharedLab: lab }) => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const ftp = ftpTo(lab, { port: closedPort });
    try {
      const error = await ftp.get('x', '/dev/null').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).kind).toBe('refused');
      expect((error as Error).message).toContain(`target (ftp): cannot connect to the FTP server at 127.0.0.1:${closedPort}: connection refused.`);
    } finally {
      await ftp.close();
    }
  });

  test('missing remote files and unwritable directories are errors naming the path', async ({ sharedLab: lab }, testInfo) => {
    const ftp = ftpTo(lab);
    const local = testInfo.outputPath('missing.bin');
    try {
      const missing = '/tmp/lw-ftp-no-such-dir/missing.bin';
      const error = await ftp.get(missing, local).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransferError);
      expect((error as Error).message).toContain(
        `target (ftp): get of ${missing} to ${local} failed: cannot read ${missing} on the device: no such file or directory (the server answered "550`,
      );
      expect((error as TransferError).kind).toBe('missing');
      await expect(stat(local)).rejects.toThrow(/ENOENT/);

      // Relative paths start at the login directory, and name it in errors.
      const relative = await ftp.get('nope.txt', local).catch((e: unknown) => e);
      expect((relative as Error).message).toContain('/home/lab/nope.txt');

      const unwritable = await ftp.put(thisFile, '/root/forbidden/file.ts').catch((e: unknown) => e);
      expect(unwritable).toBeInstanceOf(TransferError);
      expect((unwritable as Error).message).toMatch(/cannot create directory \/root\/forbidden on the device: permission denied \(the server answered "550/);
      expect((unwritable as TransferError).kind).toBe('denied');

      // The connection stays usable after refusals.
      await expect(ftp.put(thisFile, `${scratch(testInfo.testId)}/ok.ts`)).resolves.toMatchObject({ files: 1 });
      expect(ftp.stats.created).toBe(1);
    } finally {
      await ftp.close();
      await lab.host('target').exec(`rm -rf '${scratch(testInfo.testId)}'`);
    }
  });

  test('the progress callback reaches the total, for files and trees', async ({ sharedLab: lab }, testInfo) => {
    const ftp = ftpTo(lab);
    const dir = scratch(testInfo.testId);
    const local = testInfo.outputPath('progress.bin');
    await writeRandomFile(local, 8 * MiB + 123);
    const tree = testInfo.outputPath('ptree');
    await writeRandomFile(path.join(tree, 'one.bin'), 1 * MiB);
    await writeRandomFile(path.join(tree, 'sub/two.bin'), 2 * MiB + 7);
    try {
      for (const [direction, run] of [
        ['put', (onProgress: (d: number, t: number) => void) => ftp.put(local, `${dir}/progress.bin`, { onProgress })],
        ['get', (onProgress: (d: number, t: number) => void) => ftp.get(`${dir}/progress.bin`, testInfo.outputPath('p-back.bin'), { onProgress })],
        ['put tree', (onProgress: (d: number, t: number) => void) => ftp.put(tree, `${dir}/ptree`, { onProgress })],
        ['get tree', (onProgress: (d: number, t: number) => void) => ftp.get(`${dir}/ptree`, testInfo.outputPath('ptree-back'), { onProgress })],
      ] as const) {
        const calls: Array<[number, number]> = [];
        const result = await run((done, total) => calls.push([done, total]));
        const expectedTotal = direction.endsWith('tree') ? 3 * MiB + 7 : 8 * MiB + 123;
        expect(result.bytes, direction).toBe(expectedTotal);
        expect(calls.at(-1), direction).toEqual([expectedTotal, expectedTotal]);
        const done = calls.map(([d]) => d);
        expect(done, `${direction}: monotonic`).toEqual([...done].sort((a, b) => a - b));
        expect(
          calls.every(([, total]) => total === expectedTotal),
          direction,
        ).toBe(true);
      }
    } finally {
      await ftp.close();
      await lab.host('target').exec(`rm -rf '${dir}'`);
    }
  });

  test('sha256 verification hashes on the device when a runner is given, else notes the fallback', async ({ sharedLab: lab }, testInfo) => {
    const local = testInfo.outputPath('hash.bin');
    await writeRandomFile(local, 3 * MiB);
    const remote = `${scratch(testInfo.testId)}/hash.bin`;
    const withRunner = ftpTo(lab, {}, { runner: labRunner(lab) });
    const without = ftpTo(lab, { verify: 'sha256' });
    try {
      const put = await withRunner.put(local, remote, { verify: 'sha256' });
      expect(put.verified).toBe('sha256');
      expect(put.note).toBeUndefined();
      const get = await withRunner.get(remote, testInfo.outputPath('hash-back.bin'), { verify: 'sha256' });
      expect(get.verified).toBe('sha256');

      const degraded = await without.get(remote, testInfo.outputPath('hash-back2.bin'));
      expect(degraded.verified).toBe('size');
      expect(degraded.note).toMatch(/sha256 was asked, but FTP has no standard remote hashing/);

      expect((await withRunner.put(local, remote, { verify: 'none' })).verified).toBe('none');
    } finally {
      await withRunner.close();
      await without.close();
      await lab.host('target').exec(`rm -rf '${scratch(testInfo.testId)}'`);
    }
  });

  test('a dead control connection is detected and replaced', async ({ sharedLab: lab }, testInfo) => {
    const events: FtpConnectionEvent[] = [];
    const ftp = ftpTo(lab, { poolSize: 1 }, { onConnection: (event) => events.push(event) });
    const remote = `${scratch(testInfo.testId)}/alive.txt`;
    try {
      await ftp.put(thisFile, remote);
      expect(ftp.stats.created).toBe(1);
      // End the FTP sessions of user lab on the device: vsftpd runs one process per session
      // as the user, and ignores SIGTERM there.
      const killed = await lab.host('target').exec(`for pid in $(pgrep -u lab -x vsftpd); do kill -KILL "$pid"; done`);
      expect(killed.exitCode, killed.output).toBe(0);
      await expect.poll(async () => (await lab.host('target').exec('pgrep -u lab -x vsftpd | wc -l')).stdout.trim(), { timeout: 10_000 }).toBe('0');
      await ftp.get(remote, testInfo.outputPath('alive.txt'));
      expect(ftp.stats.created).toBe(2);
      expect(events).toEqual(['connected', 'lost', 'connected']);
      expect(await readFile(testInfo.outputPath('alive.txt'), 'utf8')).toBe(await readFile(thisFile, 'utf8'));
    } finally {
      await ftp.close();
      await lab.host('target').exec(`rm -rf '${scratch(testInfo.testId)}'`);
    }
  });
});

test.describe('passive data connections go through the NetworkPath', () => {
  for (const command of ['EPSV', 'PASV'] as const) {
    test(`${command}: the announced port is asked of path.endpoint() for the configured address`, async ({ sharedLab: lab }, testInfo) => {
      const target = lab.host('target');
      const controlPort = targetConfig(lab).ftp.port;
      // The config names an address only the recording path knows: a connection to the
      // address the server announces (127.0.0.1 in PASV) would bypass it and be seen.
      const recording = new RecordingPath('dut.lab.invalid');
      const ftp = ftpTo(lab, {}, { path: recording, address: 'dut.lab.invalid', passiveCommands: [command] });
      const local = testInfo.outputPath('data.bin');
      await writeRandomFile(local, 1 * MiB);
      try {
        await ftp.put(local, `${scratch(testInfo.testId)}/data.bin`);
        await ftp.get(`${scratch(testInfo.testId)}/data.bin`, testInfo.outputPath('data-back.bin'));
        const { control, data } = recording.split(controlPort);
        expect(control).toHaveLength(1);
        expect(recording.records.every((r) => r.address === 'dut.lab.invalid')).toBe(true);
        expect(data.length).toBeGreaterThanOrEqual(2);
        for (const record of data) {
          expect(record.port).toBeGreaterThanOrEqual(target.pasvPorts!.min);
          expect(record.port).toBeLessThanOrEqual(target.pasvPorts!.max);
          // Each data connection went through its endpoint, and the endpoint was released after it.
          expect(record.connections).toBe(1);
          expect(record.released).toBe(true);
        }
        expect(control[0]!.released).toBe(false);
        await ftp.close();
        expect(control[0]!.released).toBe(true);
        expect(await sha256(testInfo.outputPath('data-back.bin'))).toBe(await sha256(local));
      } finally {
        await ftp.close();
        await recording.dispose();
        await target.exec(`rm -rf '${scratch(testInfo.testId)}'`);
      }
    });
  }

  test('size falls back to LIST when the server refuses SIZE', async ({ sharedLab: lab }, testInfo) => {
    const config = targetConfig(lab);
    const conn = await openFtpConnection({
      host: 'target',
      address: config.address,
      port: config.ftp.port,
      secure: false,
      allowUnauthorizedTls: false,
      user: 'lab',
      password: config.users.lab?.password,
      connectTimeout: 10_000,
      idleTimeout: 30_000,
      path: directPath,
    });
    const dir = scratch(testInfo.testId);
    try {
      await lab.host('target').exec(`mkdir -p '${dir}' && head -c 12345 /dev/urandom > '${dir}/sized.bin'`);
      expect(await remoteFileSize(conn.client, `${dir}/sized.bin`)).toBe(12345);
      // A server without SIZE (500 / 502): the size comes from the listing instead.
      const noSize = Object.create(conn.client) as typeof conn.client;
      noSize.size = async () => {
        throw new FTPError({ code: 502, message: '502 SIZE not implemented.' });
      };
      expect(await remoteFileSize(noSize, `${dir}/sized.bin`)).toBe(12345);
      await expect(remoteFileSize(noSize, `${dir}/absent.bin`)).rejects.toThrow(/refused to get the size of .*absent\.bin: "502 SIZE not implemented\."/);
    } finally {
      await conn.close();
      await lab.host('target').exec(`rm -rf '${dir}'`);
    }
  });
});
