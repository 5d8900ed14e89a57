/**
 * SFTP transfers: files and directories both ways, large pipelined requests (fastPut /
 * fastGet, which beat OpenSSH's client on the same work), progress, verification. Zero-size
 * remote files are read with a stream: pseudo-files such as /proc entries report size 0
 * and fastGet would return them empty.
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import type { SftpOptions, VerifyMode } from '../config/schema.js';
import { TransferError, messageOf } from '../util/errors.js';
import { checkDigest, checkSize, remoteSha256, sha256File } from './verify.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';

/** What the SFTP strategy needs from its host. */
export interface SftpDeps {
  host: string;
  options: SftpOptions;
  /** The host's SFTP session (opened on first use, reopened after a lost connection). */
  session: () => Promise<SFTPWrapper>;
  /** For sha256 verification on the device. */
  runner: RemoteRunner;
}

interface FileJob {
  local: string;
  remote: string;
  size: number;
  mode: number;
}

const STATUS = { NO_SUCH_FILE: 2, PERMISSION_DENIED: 3 } as const;

/**
 * One SFTP operation as a promise, settled when the session ends first: ssh2 leaves some
 * callbacks of a session cut by a lost connection uncalled (fastPut's clean-up close of the
 * remote file is sent on the dead channel and never answered), which would hang the transfer.
 */
function sftpCall<T>(sftp: SFTPWrapper, call: (callback: (error: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const ended = () => reject(new Error('the SFTP session ended: its connection was lost'));
    if ((sftp as unknown as { readable?: boolean }).readable === false) return ended();
    sftp.once('end', ended);
    sftp.once('close', ended);
    call((error, value) => {
      sftp.off('end', ended);
      sftp.off('close', ended);
      if (error) reject(error);
      else resolve(value);
    });
  });
}

export class SftpTransfer implements TransferStrategy {
  readonly method = 'sftp' as const;
  private home: string | undefined;

  constructor(private readonly deps: SftpDeps) {}

  private get context() {
    return { host: this.deps.host, protocol: 'sftp' as const };
  }

  private fail(action: string, remotePath: string, error: unknown): TransferError {
    const code = (error as { code?: number }).code;
    const reason =
      code === STATUS.NO_SUCH_FILE ? 'no such file or directory' : code === STATUS.PERMISSION_DENIED ? 'permission denied' : messageOf(error);
    return new TransferError(`${action} ${remotePath}: ${reason}.`, {
      ...this.context,
      hint: code === STATUS.PERMISSION_DENIED ? 'Log in as a user who may write there, or pick another path.' : 'Check the remote path.',
      cause: error,
    });
  }

  /** `~/x` and relative paths are taken from the login directory, as OpenSSH's sftp does. */
  private async resolveRemote(sftp: SFTPWrapper, remote: string): Promise<string> {
    if (!remote.startsWith('~')) return remote;
    this.home ??= await sftpCall<string>(sftp, (cb) => sftp.realpath('.', cb));
    return remote === '~' ? this.home : path.posix.join(this.home, remote.replace(/^~\/?/, ''));
  }

  async put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
    const started = Date.now();
    const sftp = await this.deps.session();
    const remoteRoot = await this.resolveRemote(sftp, remotePath);
    const info = await stat(localPath).catch((error: unknown) => {
      throw new TransferError(`cannot read ${localPath}: ${messageOf(error)}.`, { ...this.context, hint: 'Check the local path.' });
    });
    const jobs: FileJob[] = [];
    if (info.isDirectory()) {
      await this.mkdirp(sftp, remoteRoot);
      await this.planUpload(sftp, localPath, remoteRoot, jobs);
    } else {
      jobs.push({ local: localPath, remote: remoteRoot, size: info.size, mode: info.mode & 0o7777 });
    }
    const total = jobs.reduce((sum, job) => sum + job.size, 0);
    let done = 0;
    for (const job of jobs) {
      await sftpCall<void>(sftp, (cb) =>
        sftp.fastPut(job.local, job.remote, {
          chunkSize: this.deps.options.chunkSize,
          concurrency: this.deps.options.concurrency,
          mode: options.mode ?? job.mode,
          step: (transferred) => options.onProgress?.(done + transferred, total),
        }, (error) => cb(error, undefined)),
      ).catch((error: unknown) => {
        throw this.fail('cannot write', job.remote, error);
      });
      done += job.size;
      options.onProgress?.(done, total);
    }
    const verified = await this.verify('put', jobs, options.verify ?? this.deps.options.verify, sftp);
    return { direction: 'put', method: 'sftp', local: localPath, remote: remotePath, files: jobs.length, bytes: total, durationMs: Date.now() - started, verified };
  }

  async get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult> {
    const started = Date.now();
    const sftp = await this.deps.session();
    const remoteRoot = await this.resolveRemote(sftp, remotePath);
    const info = await sftpCall<Stats>(sftp, (cb) => sftp.stat(remoteRoot, cb)).catch((error: unknown) => {
      throw this.fail('cannot read', remoteRoot, error);
    });
    const jobs: FileJob[] = [];
    if (info.isDirectory()) {
      await mkdir(localPath, { recursive: true });
      await this.planDownload(sftp, remoteRoot, localPath, jobs);
    } else {
      await mkdir(path.dirname(path.resolve(localPath)), { recursive: true });
      jobs.push({ local: localPath, remote: remoteRoot, size: info.size, mode: info.mode & 0o7777 });
    }
    const total = jobs.reduce((sum, job) => sum + job.size, 0);
    let done = 0;
    for (const job of jobs) {
      if (job.size === 0) {
        // Pseudo-files report size 0; read until EOF instead of trusting the size.
        job.size = await this.streamDown(sftp, job);
      } else {
        await sftpCall<void>(sftp, (cb) =>
          sftp.fastGet(job.remote, job.local, {
            chunkSize: this.deps.options.chunkSize,
            concurrency: this.deps.options.concurrency,
            step: (transferred) => options.onProgress?.(done + transferred, total),
          }, (error) => cb(error, undefined)),
        ).catch((error: unknown) => {
          throw this.fail('cannot read', job.remote, error);
        });
      }
      done += job.size;
      options.onProgress?.(done, Math.max(total, done));
    }
    const verified = await this.verify('get', jobs, options.verify ?? this.deps.options.verify, sftp);
    return { direction: 'get', method: 'sftp', local: localPath, remote: remotePath, files: jobs.length, bytes: done, durationMs: Date.now() - started, verified };
  }

  async close(): Promise<void> {
    // The SFTP session belongs to the connection; it closes with it.
  }

  private streamDown(sftp: SFTPWrapper, job: FileJob): Promise<number> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      sftp
        .createReadStream(job.remote)
        .on('data', (chunk: Buffer) => chunks.push(chunk))
        .on('error', (error: unknown) => reject(this.fail('cannot read', job.remote, error)))
        .on('end', () => {
          const data = Buffer.concat(chunks);
          writeFile(job.local, data).then(() => resolve(data.length), reject);
        });
    });
  }

  private async mkdirp(sftp: SFTPWrapper, dir: string): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    let current = dir.startsWith('/') ? '' : '.';
    for (const part of parts) {
      current = `${current}/${part}`;
      const exists = await sftpCall<Stats>(sftp, (cb) => sftp.stat(current, cb)).then(
        (s) => s.isDirectory(),
        () => false,
      );
      if (exists) continue;
      await sftpCall<void>(sftp, (cb) => sftp.mkdir(current, (error) => cb(error, undefined))).catch((error: unknown) => {
        throw this.fail('cannot create directory', current, error);
      });
    }
  }

  private async planUpload(sftp: SFTPWrapper, localDir: string, remoteDir: string, jobs: FileJob[]): Promise<void> {
    for (const entry of await readdir(localDir, { withFileTypes: true })) {
      const local = path.join(localDir, entry.name);
      const remote = path.posix.join(remoteDir, entry.name);
      if (entry.isDirectory()) {
        await this.mkdirp(sftp, remote);
        await this.planUpload(sftp, local, remote, jobs);
      } else if (entry.isFile()) {
        const info = await stat(local);
        jobs.push({ local, remote, size: info.size, mode: info.mode & 0o7777 });
      }
    }
  }

  private async planDownload(sftp: SFTPWrapper, remoteDir: string, localDir: string, jobs: FileJob[]): Promise<void> {
    const entries = await sftpCall<{ filename: string; attrs: Stats }[]>(sftp, (cb) => sftp.readdir(remoteDir, cb)).catch((error: unknown) => {
      throw this.fail('cannot list', remoteDir, error);
    });
    for (const entry of entries) {
      const remote = path.posix.join(remoteDir, entry.filename);
      const local = path.join(localDir, entry.filename);
      if (entry.attrs.isDirectory()) {
        await mkdir(local, { recursive: true });
        await this.planDownload(sftp, remote, local, jobs);
      } else if (entry.attrs.isFile()) {
        jobs.push({ local, remote, size: entry.attrs.size, mode: entry.attrs.mode & 0o7777 });
      }
    }
  }

  private async verify(direction: 'put' | 'get', jobs: FileJob[], mode: VerifyMode, sftp: SFTPWrapper): Promise<VerifyMode> {
    if (mode === 'none') return 'none';
    for (const job of jobs) {
      const what = `${direction === 'put' ? 'upload' : 'download'} of ${direction === 'put' ? job.local : job.remote}`;
      const localSize = (await stat(job.local)).size;
      const remoteSize = (await sftpCall<Stats>(sftp, (cb) => sftp.stat(job.remote, cb))).size;
      // A pseudo-file keeps reporting size 0 on the device; its size was checked by reading to EOF.
      if (!(direction === 'get' && remoteSize === 0)) checkSize(direction === 'put' ? localSize : remoteSize, direction === 'put' ? remoteSize : localSize, what, this.context);
      if (mode === 'sha256' && !(direction === 'get' && remoteSize === 0)) {
        checkDigest(
          direction === 'put' ? await sha256File(job.local) : await remoteSha256(this.deps.runner, job.remote, this.context),
          direction === 'put' ? await remoteSha256(this.deps.runner, job.remote, this.context) : await sha256File(job.local),
          what,
          this.context,
        );
      }
    }
    return mode;
  }
}
