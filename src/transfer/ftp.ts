/**
 * FTP and FTPS transfers for one host, over basic-ftp 6.
 *
 * - Every socket goes through the host's {@link NetworkPath}: the control connection to
 *   `path.endpoint(address, ftp.port)`, each passive data connection to
 *   `path.endpoint(address, <announced port>)` (see ./ftp/passive.ts). So the same code
 *   works directly and through SSH hops.
 * - A basic-ftp client does one thing at a time, so a pool of up to `ftp.poolSize` logged-in
 *   clients serves concurrent transfers; extra transfers queue (see ./ftp/pool.ts).
 * - Every file is verified after it moved: by size (SIZE, or LIST where SIZE is refused),
 *   or by SHA-256 when a {@link RemoteRunner} can hash on the device. FTP itself has no
 *   standard hash command, so without a runner `sha256` falls back to size and says so in
 *   the result's `note`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FTPError } from 'basic-ftp';
import type { RemoteHostConfig } from '../config/defineLab.js';
import type { FtpOptions, VerifyMode } from '../config/schema.js';
import type { NetworkPath } from '../transport/network.js';
import { ConfigError, ConnectionError, LabwrightError, TimeoutError, TransferError, messageOf } from '../util/errors.js';
import { registerSecret } from '../util/secrets.js';
import { formatDuration } from '../util/time.js';
import { openFtpConnection, type FtpConnection } from './ftp/connect.js';
import { readLocalSource, type LocalSource } from './ftp/local.js';
import type { PassiveCommand } from './ftp/passive.js';
import { Pool, describeWait, type PoolStats } from './ftp/pool.js';
import {
  FtpRefusal,
  absoluteRemote,
  chmodRemote,
  ensureRemoteDir,
  listRemoteTree,
  makeRemoteDir,
  refusalFor,
  remoteFileSize,
  remoteKind,
} from './ftp/remote.js';
import { ByteCounter, ProgressReporter, sha256File } from './ftp/streams.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';

export type { PassiveCommand } from './ftp/passive.js';
export type { PoolStats } from './ftp/pool.js';

/** What FTP transfers report; shaped like the host layer's `transfer` and `connection` lab events. */
export type FtpEvent =
  | {
      type: 'transfer';
      time: number;
      host: string;
      direction: 'put' | 'get';
      method: 'ftp';
      local: string;
      remote: string;
      bytes?: number;
      durationMs: number;
      error?: string;
    }
  | { type: 'connection'; time: number; host: string; protocol: 'ftp'; event: 'connected' | 'closed' | 'lost'; detail?: string };

/** A transfer result with a note where the verification asked for could not be done. */
export interface FtpTransferResult extends TransferResult {
  method: 'ftp';
  /** Why `verified` differs from what was asked, if it does. */
  note?: string;
}

/** What an {@link FtpTransfer} needs. */
export interface FtpTransferSetup {
  /** Lab host name, for messages and events. */
  host: string;
  /** Address as configured; endpoints of `path` are asked for it. */
  address: string;
  options: FtpOptions;
  user: string;
  password: string | undefined;
  path: NetworkPath;
  /** Receives connection and transfer events. */
  onEvent?: (event: FtpEvent) => void;
  /** Runs `sha256sum` on the device for `verify: 'sha256'` (FTP paths must be the device's paths). */
  runner?: RemoteRunner;
  /** A control reply or a stalled data transfer waits at most this long; default max(30 s, connectTimeout). */
  idleTimeout?: number;
  /** A transfer waiting for a free connection fails when none was freed this long; default 5 min. */
  queueTimeout?: number;
  /** Passive commands to try, default `['EPSV', 'PASV']`. */
  passiveCommands?: readonly PassiveCommand[];
}

/**
 * Idle connections older than this are probed with NOOP before reuse: a device that rebooted
 * or dropped the session without a FIN is found before a transfer is started on it.
 */
const PROBE_AFTER_IDLE_MS = 1_000;
const PROBE_TIMEOUT_MS = 5_000;
/** fs read size for uploads: fewer, larger writes to the data socket. */
const READ_CHUNK = 256 * 1024;

interface TransferContext {
  conn: FtpConnection;
  progress: ProgressReporter;
  verify: VerifyMode;
  /** Explicit mode asked by the caller. */
  mode: number | undefined;
  notes: Set<string>;
}

/** FTP/FTPS {@link TransferStrategy} for one host. */
export class FtpTransfer implements TransferStrategy {
  readonly method = 'ftp' as const;
  private readonly pool: Pool<FtpConnection>;
  private readonly idleTimeout: number;
  private closing = false;

  /** Builds the strategy from a host's validated config (FTP user: `ftp.user`, else the host's user). */
  static fromConfig(config: RemoteHostConfig, path: NetworkPath, extras: Pick<FtpTransferSetup, 'onEvent' | 'runner'> = {}): FtpTransfer {
    const user = config.ftp.user ?? config.user;
    const credentials = config.users[user];
    if (!credentials) {
      throw new ConfigError([`host "${config.name}" → ftp.user: "${user}" is not one of its users (${Object.keys(config.users).join(', ')})`]);
    }
    return new FtpTransfer({ host: config.name, address: config.address, options: config.ftp, user, password: credentials.password, path, ...extras });
  }

  constructor(private readonly setup: FtpTransferSetup) {
    registerSecret(setup.password);
    this.idleTimeout = setup.idleTimeout ?? Math.max(30_000, setup.options.connectTimeout);
    this.pool = new Pool<FtpConnection>(setup.options.poolSize, setup.queueTimeout ?? 5 * 60_000, {
      create: () => this.connect(),
      validate: async (conn, idleMs) => !conn.closed && (idleMs < PROBE_AFTER_IDLE_MS || (await conn.probe(PROBE_TIMEOUT_MS))),
      destroy: async (conn, reason) => {
        const wasOpen = !conn.closed;
        await conn.close();
        this.emit({ type: 'connection', time: Date.now(), host: setup.host, protocol: 'ftp', event: reason === 'lost' || !wasOpen ? 'lost' : 'closed' });
      },
      waitTimeoutError: (waitMs, size) =>
        new TimeoutError(`a transfer waited for a free FTP connection: ${describeWait(waitMs, size)}.`, {
          host: setup.host,
          protocol: 'ftp',
          hint: 'Raise ftp.poolSize, run fewer transfers on this host at once, or check for a stalled transfer.',
        }),
      closedError: () => new TransferError('the FTP transfers of this host were closed.', { host: setup.host, protocol: 'ftp', hint: 'Do not use a host after close().' }),
      // A refused login or certificate fails every queued transfer at once instead of
      // logging in again for each (repeated refusals can lock the account on the device).
      failsWaiters: (error) => error instanceof ConnectionError && !error.transient,
    });
  }

  /** Pool counters (connections open, busy, waiting, peak concurrency). */
  get stats(): PoolStats {
    return this.pool.stats;
  }

  /**
   * Uploads a file or a directory tree. A directory's contents go into `remotePath`
   * (created with missing parents, merged if it exists); a file goes to `remotePath`, or
   * into it when it ends with `/`. Relative remote paths start at the FTP login directory.
   * Files get `options.mode`, else their local mode, by SITE CHMOD (noted when refused).
   */
  put(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<FtpTransferResult> {
    return this.run('put', localPath, remotePath, options, async () => {
      // Read before taking a connection: a missing local path needs no server.
      const source = await readLocalSource(localPath);
      const total = source.kind === 'file' ? source.size : source.entries.reduce((sum, entry) => sum + entry.size, 0);
      return { total, body: (context) => this.putSource(context, source, localPath, remotePath) };
    });
  }

  /**
   * Downloads a file or a directory tree. A directory's contents go into `localPath`
   * (created, merged if it exists); a file goes to `localPath`, or into it when it ends with `/`.
   * Modes: `options.mode` if given, else the listed modes of a tree's files; a single file
   * gets the runner's default mode (FTP's SIZE does not tell the mode).
   */
  get(remotePath: string, localPath: string, options: TransferOptions = {}): Promise<FtpTransferResult> {
    return this.run('get', localPath, remotePath, options, async () => ({ total: 0, body: (context) => this.getSource(context, remotePath, localPath) }));
  }

  /** Deletes a remote file (for cleanup in tests and benchmarks). */
  async removeFile(remotePath: string): Promise<void> {
    await this.withConnection(async (conn) => {
      const target = absoluteRemote(conn.home, remotePath);
      await refusalFor('delete', target, () => conn.client.remove(target));
    }).catch((error: unknown) => {
      throw this.describeFailure('delete', remotePath, '', error);
    });
  }

  /** Closes every FTP connection of this host; transfers still running fail. */
  async close(): Promise<void> {
    this.closing = true;
    await this.pool.close();
  }

  // ---------------------------------------------------------------------------------------
  // put

  private async putSource(context: TransferContext, source: LocalSource, localPath: string, remotePath: string): Promise<{ files: number; bytes: number }> {
    const { conn } = context;
    if (source.kind === 'file') {
      const target = absoluteRemote(conn.home, remotePath.endsWith('/') ? path.posix.join(remotePath, path.basename(localPath)) : remotePath);
      await ensureRemoteDir(conn.client, path.posix.dirname(target));
      await this.putFile(context, localPath, target, source.size, source.mode);
      return { files: 1, bytes: source.size };
    }
    const root = absoluteRemote(conn.home, remotePath);
    await ensureRemoteDir(conn.client, root);
    let files = 0;
    let bytes = 0;
    for (const entry of source.entries) {
      const remote = path.posix.join(root, entry.relative);
      if (entry.kind === 'directory') {
        await makeRemoteDir(conn.client, remote);
        continue;
      }
      await this.putFile(context, path.join(localPath, ...entry.relative.split('/')), remote, entry.size, entry.mode);
      files++;
      bytes += entry.size;
    }
    return { files, bytes };
  }

  private async putFile(context: TransferContext, localFile: string, remoteFile: string, size: number, sourceMode: number): Promise<void> {
    const { conn, progress } = context;
    const source = createReadStream(localFile, { highWaterMark: READ_CHUNK });
    const counter = new ByteCounter((count) => progress.add(count));
    // A read error destroys the counter, which basic-ftp watches: the upload then fails.
    const feeding = pipeline(source, counter).catch(() => undefined);
    try {
      await refusalFor('write', remoteFile, () => conn.client.uploadFrom(counter, remoteFile));
    } finally {
      source.destroy();
      await feeding;
    }
    if (counter.bytes !== size) {
      throw new TransferError(`${localFile} changed while it was uploaded to ${remoteFile}: ${counter.bytes} bytes sent, ${size} expected; the remote file is incomplete.`, {
        host: this.setup.host,
        protocol: 'ftp',
        hint: 'Do not modify files while they are transferred, then retry.',
      });
    }
    const refused = await chmodRemote(conn.client, remoteFile, context.mode ?? sourceMode);
    if (refused) {
      if (context.mode !== undefined) throw new FtpRefusal(`set mode ${context.mode.toString(8)} on`, remoteFile, refused.message.trim(), refused.code);
      context.notes.add(`the server refused SITE CHMOD ("${refused.message.trim()}"): remote files have the server's default mode`);
    }
    await this.verifyFile(context, 'put', localFile, remoteFile, size, () => remoteFileSize(conn.client, remoteFile));
  }

  // ---------------------------------------------------------------------------------------
  // get

  private async getSource(context: TransferContext, remotePath: string, localPath: string): Promise<{ files: number; bytes: number }> {
    const { conn } = context;
    const source = absoluteRemote(conn.home, remotePath);
    const kind = await remoteKind(conn.client, source);
    if (kind.kind === 'missing') throw new FtpRefusal('read', source, kind.reply, kind.code);
    if (kind.kind === 'file') {
      const target = localPath.endsWith('/') || localPath.endsWith(path.sep) ? path.join(localPath, path.posix.basename(source)) : localPath;
      context.progress.total = kind.size;
      await mkdir(path.dirname(path.resolve(target)), { recursive: true });
      await this.getFile(context, source, target, kind.size, undefined);
      return { files: 1, bytes: kind.size };
    }
    const entries = await listRemoteTree(conn.client, source);
    const total = entries.reduce((sum, entry) => sum + entry.size, 0);
    context.progress.total = total;
    await mkdir(localPath, { recursive: true });
    let files = 0;
    for (const entry of entries) {
      const local = path.join(localPath, ...entry.relative.split('/'));
      if (entry.kind === 'directory') {
        await mkdir(local, { recursive: true });
        if (context.mode === undefined && entry.mode !== undefined) await chmod(local, entry.mode | 0o700);
        continue;
      }
      await this.getFile(context, path.posix.join(source, entry.relative), local, entry.size, entry.mode);
      files++;
    }
    return { files, bytes: total };
  }

  private async getFile(context: TransferContext, remoteFile: string, localFile: string, size: number, listedMode: number | undefined): Promise<void> {
    const { conn, progress } = context;
    const counter = new ByteCounter((count) => progress.add(count));
    const writing = pipeline(counter, createWriteStream(localFile));
    writing.catch(() => undefined); // awaited below; a failure before that must not go unhandled
    try {
      await refusalFor('read', remoteFile, () => conn.client.downloadTo(counter, remoteFile));
      await writing;
    } catch (error) {
      counter.destroy();
      await writing.catch(() => undefined);
      await unlink(localFile).catch(() => undefined); // no partial file that looks like a result
      throw error;
    }
    const mode = context.mode ?? listedMode;
    if (mode !== undefined) await chmod(localFile, mode);
    await this.verifyFile(context, 'get', localFile, remoteFile, size, async () => (await stat(localFile)).size);
  }

  // ---------------------------------------------------------------------------------------
  // verification

  /** Compares sizes (the other side's size from `measure`), or SHA-256 when asked and possible. */
  private async verifyFile(context: TransferContext, direction: 'put' | 'get', localFile: string, remoteFile: string, expected: number, measure: () => Promise<number>): Promise<void> {
    if (context.verify === 'none') return;
    const actual = await measure();
    if (actual !== expected) {
      const [from, to] = direction === 'put' ? [localFile, remoteFile] : [remoteFile, localFile];
      throw new TransferError(`${direction} of ${from} to ${to} is incomplete: ${actual} bytes arrived of ${expected}.`, {
        host: this.setup.host,
        protocol: 'ftp',
        hint: direction === 'put' ? 'Check free space and quota on the device, then retry.' : 'Check free space on the runner, then retry.',
      });
    }
    if (context.verify !== 'sha256') return;
    const runner = this.setup.runner;
    if (!runner) return; // run() notes the fallback to size
    const [local, remote] = await Promise.all([sha256File(localFile), this.remoteSha256(runner, remoteFile, expected)]);
    if (local !== remote) {
      throw new TransferError(`${direction} of ${remoteFile}: SHA-256 differs between the runner (${local}) and the device (${remote}).`, {
        host: this.setup.host,
        protocol: 'ftp',
        hint: 'The file was corrupted in transit or changed during the transfer; retry it.',
      });
    }
  }

  private async remoteSha256(runner: RemoteRunner, remoteFile: string, size: number): Promise<string> {
    const quoted = `'${remoteFile.replaceAll("'", `'\\''`)}'`;
    // Bounded generously: small devices hash slowly (allow 5 MB/s on top of 30 s).
    const timeout = 30_000 + Math.ceil(size / 5_000);
    const result = await runner.run(`sha256sum -- ${quoted}`, { timeout });
    const hash = /^\\?([0-9a-f]{64})\b/.exec(result.stdout.trim())?.[1];
    if (result.exitCode !== 0 || !hash) {
      throw new TransferError(`cannot hash ${remoteFile} on the device for sha256 verification (exit ${result.exitCode ?? 'none'}: ${(result.stderr || result.stdout).trim().slice(0, 200)}).`, {
        host: this.setup.host,
        protocol: 'ftp',
        hint: "The device needs sha256sum, and FTP paths must be its file-system paths (no chroot); otherwise use verify: 'size'.",
      });
    }
    return hash;
  }

  // ---------------------------------------------------------------------------------------
  // plumbing

  private async connect(): Promise<FtpConnection> {
    const { host, address, options, user, password, path: networkPath } = this.setup;
    const conn = await openFtpConnection({
      host,
      address,
      port: options.port,
      secure: options.secure,
      allowUnauthorizedTls: options.allowUnauthorizedTls,
      user,
      password,
      connectTimeout: options.connectTimeout,
      idleTimeout: this.idleTimeout,
      path: networkPath,
      ...(this.setup.passiveCommands ? { passiveCommands: this.setup.passiveCommands } : {}),
    });
    const security = options.secure === false ? 'plain FTP' : options.secure === 'explicit' ? 'FTPS (explicit)' : 'FTPS (implicit)';
    this.emit({ type: 'connection', time: Date.now(), host, protocol: 'ftp', event: 'connected', detail: `${user}@${address}:${options.port} ${networkPath.description}, ${security}` });
    return conn;
  }

  /** Runs `body` on a pooled connection and releases the transfer's data endpoints after it. */
  private withConnection<T>(body: (conn: FtpConnection) => Promise<T>): Promise<T> {
    return this.pool.use(
      async (conn) => {
        try {
          return await body(conn);
        } finally {
          await conn.connector.release();
        }
      },
      // Server refusals and verification failures leave the session usable; anything else
      // (timeouts, lost data connections) may have left it in an unknown state.
      (error) => !(error instanceof FtpRefusal || error instanceof FTPError || error instanceof TransferError),
    );
  }

  /**
   * One put or get: `prepare` runs first without a connection and says how many bytes will
   * move (0 when only the server knows: the body then sets it), `body` runs on a pooled
   * connection. Emits the transfer event and turns failures into labwright errors.
   */
  private async run(
    direction: 'put' | 'get',
    local: string,
    remote: string,
    options: TransferOptions,
    prepare: () => Promise<{ total: number; body: (context: TransferContext) => Promise<{ files: number; bytes: number }> }>,
  ): Promise<FtpTransferResult> {
    const started = Date.now();
    const verify = options.verify ?? this.setup.options.verify;
    const notes = new Set<string>();
    if (verify === 'sha256' && !this.setup.runner) {
      notes.add('sha256 was asked, but FTP has no standard remote hashing and no command runner was given for this host: verified by size');
    }
    const report = (bytes: number | undefined, error?: string) =>
      this.emit({
        type: 'transfer',
        time: Date.now(),
        host: this.setup.host,
        direction,
        method: 'ftp',
        local,
        remote,
        ...(bytes === undefined ? {} : { bytes }),
        durationMs: Date.now() - started,
        ...(error ? { error } : {}),
      });
    try {
      const { total, body } = await prepare();
      const moved = await this.withConnection(async (conn) => {
        const progress = new ProgressReporter(total, options.onProgress);
        const outcome = await body({ conn, progress, verify, mode: options.mode, notes });
        progress.finish();
        return outcome;
      });
      report(moved.bytes);
      return {
        direction,
        method: 'ftp',
        local,
        remote,
        files: moved.files,
        bytes: moved.bytes,
        durationMs: Date.now() - started,
        verified: verify === 'sha256' && !this.setup.runner ? 'size' : verify,
        ...(notes.size > 0 ? { note: [...notes].join('; ') } : {}),
      };
    } catch (error) {
      const [from, to] = direction === 'put' ? [local, remote] : [remote, local];
      const failure = this.describeFailure(direction, from, to, error);
      report(undefined, failure.message);
      throw failure;
    }
  }

  /** Turns any failure into a labwright error naming the host, the path and what to do. */
  private describeFailure(action: string, from: string, to: string, error: unknown): LabwrightError {
    if (error instanceof LabwrightError) return error;
    const context = { host: this.setup.host, protocol: 'ftp' as const, cause: error };
    const what = to ? `${action} of ${from} to ${to}` : `${action} of ${from}`;
    if (error instanceof FtpRefusal) {
      return new TransferError(`${what} failed: ${error.message}.`, { ...context, hint: refusalHint(error, this.setup.user) });
    }
    if (error instanceof FTPError) {
      return new TransferError(`${what} failed: the server answered "${error.message.trim()}".`, { ...context, hint: 'Check the paths and permissions on the device.' });
    }
    const code = (error as NodeJS.ErrnoException).code;
    const message = messageOf(error);
    if (this.closing) {
      return new TransferError(`${what} was aborted: the host's FTP connections were closed during it (${message}).`, { ...context, hint: 'Wait for transfers to finish before closing the host.' });
    }
    if (/Timeout \((data|control) socket\)/.test(message)) {
      return new TransferError(`${what} stalled: the server made no progress for ${formatDuration(this.idleTimeout)} (${message}).`, {
        ...context,
        hint: 'The device may be overloaded, out of space or rebooting; check it and retry.',
      });
    }
    // Node's file-system errors carry the path they concern; socket errors do not.
    if (code && typeof (error as NodeJS.ErrnoException).path === 'string') {
      return new TransferError(`${what} failed on the runner: ${message}.`, { ...context, hint: 'Check the local path, its permissions and free space.' });
    }
    return new TransferError(`${what} failed: ${message}.`, { ...context, hint: 'The FTP connection was lost or broke; check the device and retry.' });
  }

  private emit(event: FtpEvent): void {
    try {
      this.setup.onEvent?.(event);
    } catch {
      // Observers must not change what a transfer does.
    }
  }
}

function refusalHint(refusal: FtpRefusal, user: string): string {
  if (refusal.code === 552) return 'The device is out of space or over quota.';
  if (refusal.action === 'read' || refusal.action === 'get the size of' || refusal.action === 'list') {
    return `Check that the remote path exists and that user "${user}" can read it; relative paths start at the FTP login directory.`;
  }
  return `Check that the remote directory exists and that user "${user}" may write there.`;
}
