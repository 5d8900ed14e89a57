/**
 * FTP throughput: put and get of one file through labwright's FtpTransfer, and the same with
 * curl as a reference client when it is installed, measured in one run so the ratio means
 * something. Not a test: nothing asserts timings.
 *
 *   npx tsx bench/ftp.ts [sizeMiB]     # starts the container lab's target and prints results
 *
 * `measureFtp()` is what `npm run bench` folds in.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import type { RemoteHostConfig } from '../src/config/defineLab.js';
import { FtpTransfer } from '../src/transfer/ftp.js';
import { directPath, type NetworkPath } from '../src/transport/network.js';

const MiB = 1024 * 1024;

/** Throughput of one direction, in MB/s (10^6 bytes per second). */
export interface Throughput {
  ms: number;
  mbps: number;
}

/** What {@link measureFtp} measured. */
export interface FtpBenchResult {
  host: string;
  bytes: number;
  secure: false | 'explicit' | 'implicit';
  put: Throughput;
  get: Throughput;
  /** curl against the same server, when curl is installed and the connection is plain or explicit FTPS. */
  curl?: { put: Throughput; get: Throughput };
}

/** Options of {@link measureFtp}. */
export interface FtpBenchOptions {
  /** How the host is reached; default direct. */
  path?: NetworkPath;
  /** Remote directory for the scratch file; default the FTP login directory. */
  remoteDir?: string;
  /** Also time curl (default true when it is installed and the path is direct). */
  reference?: boolean;
}

/**
 * Puts and gets a random file of `sizeBytes` to `config`'s FTP server (with its `ftp`
 * options: FTPS, verification) and returns the throughput of each direction. The remote
 * and local scratch files are removed afterwards.
 */
export async function measureFtp(config: RemoteHostConfig, sizeBytes = 100 * MiB, options: FtpBenchOptions = {}): Promise<FtpBenchResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lw-ftp-bench-'));
  const source = path.join(dir, 'source.bin');
  const back = path.join(dir, 'back.bin');
  const warm = path.join(dir, 'warm.bin');
  const name = `lw-ftp-bench-${randomUUID()}.bin`;
  const remote = options.remoteDir ? path.posix.join(options.remoteDir, name) : name;
  const networkPath = options.path ?? directPath;
  const ftp = FtpTransfer.fromConfig(config, networkPath);
  try {
    await writeRandom(source, sizeBytes);
    await writeRandom(warm, 1024);
    // One small transfer first: the timed ones should not include the login.
    await ftp.put(warm, remote, { verify: 'none' });
    const put = await timed(sizeBytes, () => ftp.put(source, remote));
    const get = await timed(sizeBytes, () => ftp.get(remote, back));
    const result: FtpBenchResult = { host: config.name, bytes: sizeBytes, secure: config.ftp.secure, put, get };
    const wantCurl = options.reference ?? (networkPath === directPath && config.ftp.secure !== 'implicit');
    if (wantCurl && (await hasCurl())) {
      const url = `ftp://${config.address.includes(':') ? `[${config.address}]` : config.address}:${config.ftp.port}/${remote.startsWith('/') ? `%2F${remote.slice(1)}` : remote}`;
      const user = config.ftp.user ?? config.user;
      const curl = (args: string[]) => runCurl(args, user, config.users[user]?.password ?? '', config.ftp);
      result.curl = {
        put: await timed(sizeBytes, () => curl(['-T', source, url])),
        get: await timed(sizeBytes, () => curl(['-o', back, url])),
      };
    }
    return result;
  } finally {
    await ftp.removeFile(remote).catch(() => undefined);
    await ftp.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function timed(bytes: number, body: () => Promise<unknown>): Promise<Throughput> {
  const started = process.hrtime.bigint();
  await body();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms: Math.round(ms), mbps: Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10 };
}

async function writeRandom(file: string, size: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (let left = size; left > 0; left -= 4 * MiB) await handle.write(randomBytes(Math.min(4 * MiB, left)));
  } finally {
    await handle.close();
  }
}

function hasCurl(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['--version'], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

/** Runs curl with the credentials on stdin (`-K -`), never on its command line. */
function runCurl(args: string[], user: string, password: string, ftp: RemoteHostConfig['ftp']): Promise<void> {
  const tls = ftp.secure === 'explicit' ? ['--ssl-reqd', ...(ftp.allowUnauthorizedTls ? ['--insecure'] : [])] : [];
  const quote = (text: string) => `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--fail', '--ftp-pasv', '--ftp-create-dirs', '--max-time', '600', '-K', '-', ...tls, ...args], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited ${code}: ${stderr.trim()}`))));
    child.stdin.end(`user = ${quote(`${user}:${password}`)}\n`);
  });
}

/** `npx tsx bench/ftp.ts [sizeMiB]`: measures against the container lab's target (plain FTP and explicit FTPS). */
async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 100);
  const { startLab } = await import('../fixtures/lab/startLab.js');
  const { labInput } = await import('../tests/helpers/containerLab.js');
  const { defineLab } = await import('../src/config/defineLab.js');
  const lab = await startLab({ roles: ['target'] });
  try {
    for (const secure of [false, 'explicit'] as const) {
      const config = defineLab(labInput(lab, { target: { ftp: { secure, allowUnauthorizedTls: true } } })).hosts.target;
      if (!config) throw new Error('the lab has no target');
      const result = await measureFtp(config, sizeMiB * MiB, { remoteDir: '/tmp' });
      const line = (label: string, t: Throughput) => `${label.padEnd(22)} ${String(t.mbps).padStart(8)} MB/s  (${t.ms} ms)`;
      console.log(`\n${sizeMiB} MiB, ${secure ? `FTPS ${secure}` : 'plain FTP'}, loopback to vsftpd in Docker`);
      console.log(line('labwright put', result.put));
      console.log(line('labwright get', result.get));
      if (result.curl) {
        console.log(line('curl put', result.curl.put));
        console.log(line('curl get', result.curl.get));
        console.log(
          `ratio labwright/curl: put ${(result.put.mbps / result.curl.put.mbps).toFixed(2)}, get ${(result.get.mbps / result.curl.get.mbps).toFixed(2)}`,
        );
      }
    }
  } finally {
    await lab.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
