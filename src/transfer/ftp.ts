/**
 * FTP and FTPS transfers for one host, over basic-ftp 6.
 *
 * - Every socket goes through the host's {@link NetworkPath}: the control connection to
 *   `path.endpoint(address, ftp.port)`, each passive data connection to
 *   `path.endpoint(address, <announced port>)` (see ./ftp/passive.ts). So the same code
 *   works directly and through SSH hops.
 * - A basic-ftp client does one thing at a time, so a pool of up to `ftp.poolSize` logged-in
 *   clients serves concurrent transfers; extra transfers queue (see ./ftp/pool.ts).
 * - Every file is written under a temporary name, verified there (by size: SIZE, or LIST
 *   where SIZE is refused; or by SHA-256 when a {@link RemoteRunner} can hash on the
 *   device), then renamed (RNFR/RNTO). FTP itself has no standard hash command, so
 *   without a runner `sha256` falls back to size and says so in the result's `note`.
 * - Each transfer runs under a guard (./guard.ts): its control connection closing, its idle
 *   timeout or its caller's signal end it, closing the connection under it.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

import { FTPError } from 'basic-ftp';

import type { RemoteHostConfig } from '../config/defineLab.js';
import type { FtpOptions } from '../config/schema.js';
import type { NetworkPath } from '../transport/network.js';
import { ConnectionError, LabwrightError, messageOf, TimeoutError, TransferError } from '../util/errors.js';
import { registerSecret } from '../util/secrets.js';
import { formatDuration } from '../util/time.js';
import { ByteCounter } from './byteCounter.js';
import { checkUploadDigests, uploadDigests } from './deviceShell.js';
import { type FtpConnection, openFtpConnection } from './ftp/connect.js';
import type { PassiveCommand } from './ftp/passive.js';
import { describeWait, Pool, type PoolStats } from './ftp/pool.js';
import {
  absoluteRemote,
  chmodRemote,
  destinationKind,
  ensureRemoteDir,
  explainRemotePath,
  FtpRefusal,
  listRemoteTree,
  makeRemoteDir,
  refusalFor,
  remoteFileMode,
  remoteFileSize,
  remoteKind,
  renameOver,
} from './ftp/remote.js';
import { guardedDownload, guardedUpload, type TransferGuard } from './guard.js';
import { localPathOf } from './localTree.js';
import { devicePaths, failureText, type FileSide, type PathKind, placeDestination, runnerPaths, type UploadFile, uploadFiles } from './paths.js';
import { commitRunnerFiles, type LandedFile, runnerPartials, runnerSide, stageRunnerFile } from './runnerSide.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';
import { checkSize } from './verify.js';

export type { PassiveCommand } from './ftp/passive.js';
export type { PoolStats } from './ftp/pool.js';

/** Lifecycle of one FTP control connection. */
export type FtpConnectionEvent = 'connected' | 'closed' | 'lost';

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
  /** Told when a control connection is opened, closed or lost (the host reports them as connection events). */
  onConnection?: (event: FtpConnectionEvent, detail?: string) => void;
  /** Runs `sha256sum` on the device for `verify: 'sha256'` (FTP paths must be the device's paths). */
  runner?: RemoteRunner;
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

const SHA256_FALLBACK_NOTE = 'sha256 was asked, but FTP has no standard remote hashing and no command runner was given for this host: verified by size';

/** FTP/FTPS {@link TransferStrategy} for one host. */
export class FtpTransfer implements TransferStrategy {
  readonly method = 'ftp' as const;
  private readonly pool: Pool<FtpConnection>;
  private closing = false;

  /** Builds the strategy from a host's validated config (FTP user: `ftp.user`, else the host's user; defineLab checked it exists). */
  static fromConfig(config: RemoteHostConfig, path: NetworkPath, extras: Pick<FtpTransferSetup, 'onConnection' | 'runner'> = {}): FtpTransfer {
    const user = config.ftp.user ?? config.user;
    return new FtpTransfer({ host: config.name, address: config.address, options: config.ftp, user, password: config.users[user]?.password, path, ...extras });
  }

  constructor(private readonly setup: FtpTransferSetup) {
    registerSecret(setup.password);
    this.pool = new Pool<FtpConnection>(setup.options.poolSize, setup.queueTimeout ?? 5 * 60_000, {
      create: () => this.connect(),
      validate: async (conn, idleMs) => !conn.closed && (idleMs < PROBE_AFTER_IDLE_MS || (await conn.probe(PROBE_TIMEOUT_MS))),
      destroy: async (conn, reason) => {
        const wasOpen = !conn.closed;
        await conn.close();
        this.setup.onConnection?.(reason === 'lost' || !wasOpen ? 'lost' : 'closed');
      },
      waitTimeoutError: (waitMs, size) =>
        new TimeoutError(`a transfer waited for a free FTP connection: ${describeWait(waitMs, size)}.`, {
          host: setup.host,
          protocol: 'ftp',
          hint: 'Raise ftp.poolSize, run fewer transfers on this host at once, or check for a stalled transfer.',
        }),
      closedError: () =>
        new TransferError('the FTP transfers of this host were closed.', { host: setup.host, protocol: 'ftp', hint: 'Do not use a host after close().' }),
      // A refused login or certificate fails every queued transfer at once instead of
      // logging in again for each (repeated refusals can lock the account on the device).
      failsWaiters: (error) => error instanceof ConnectionError && !error.transient,
    });
  }

  private get context() {
    return { host: this.setup.host, protocol: 'ftp' as const };
  }

  /** Pool counters (connections open, busy, waiting, peak concurrency). */
  get stats(): PoolStats {
    return this.pool.stats;
  }

  /**
   * Uploads a file or a directory tree, following the transfer path rules. Relative remote
   * paths (and `~/`) start at the FTP login directory. Files get `options.mode`, else their
   * local mode, by SITE CHMOD (noted in the result when the server refuses it).
   */
  put(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return guardedUpload(this.context, this.setup.options.idleTimeout, localPath, remotePath, options, async (guard, source, totals) => {
      const started = Date.now();
      const verify = options.verify ?? this.setup.options.verify;
      const notes = new Set<string>();
      await this.session(guard, async (conn) => {
        const root = await placeDestination(
          this.side(conn),
          absoluteRemote(conn.home, remotePath),
          { directory: source.kind === 'directory', name: runnerPaths.basename(localPath) },
          this.context,
        );
        if (source.kind === 'directory') {
          for (const entry of source.entries)
            if (entry.kind === 'directory') await guard.step(makeRemoteDir(conn.client, devicePaths.join(root, entry.relative)));
        }
        const partials = guard.partials('device', (paths) => this.removeAll(paths));
        const jobs = uploadFiles(source, localPath, root, options.mode);
        for (const job of jobs) {
          partials.paths.add(job.temp);
          await this.putFile(conn, guard, job, job.temp);
        }
        // Verified under the temporary names, then renamed: a final name only ever holds a whole file.
        if (verify !== 'none') {
          for (const job of jobs) checkSize(job.size, await guard.step(remoteFileSize(conn.client, job.temp)), `upload of ${job.local}`, this.context);
        }
        if (verify === 'sha256' && this.setup.runner) {
          const digests = await guard.step(uploadDigests(this.setup.runner, jobs, totals.bytes, this.context), { quiet: true });
          checkUploadDigests(jobs, digests, this.context);
        } else if (verify === 'sha256') {
          notes.add(SHA256_FALLBACK_NOTE);
        }
        for (const job of jobs) {
          guard.check();
          const refused = await guard.step(chmodRemote(conn.client, job.temp, job.mode));
          if (refused) {
            if (options.mode !== undefined) {
              throw new TransferError(
                `cannot give ${job.final} mode ${options.mode.toString(8)}: the server refused SITE CHMOD ("${refused.message.trim()}").`,
                {
                  ...this.context,
                  hint: "Leave `mode` out (files then get the server's default mode), or use another transfer method.",
                  kind: 'unsupported',
                },
              );
            }
            notes.add(`the server refused SITE CHMOD ("${refused.message.trim()}"): remote files have the server's default mode`);
          }
          await guard.step(renameOver(conn.client, job.temp, job.final));
          partials.paths.delete(job.temp);
        }
      });
      return {
        direction: 'put',
        method: 'ftp',
        local: localPath,
        remote: remotePath,
        files: totals.files,
        bytes: totals.bytes,
        durationMs: Date.now() - started,
        verified: verify === 'sha256' && !this.setup.runner ? 'size' : verify,
        ...(notes.size > 0 ? { note: [...notes].join('; ') } : {}),
      };
    });
  }

  /**
   * Downloads a file or a directory tree, following the transfer path rules. Modes:
   * `options.mode` if given, else the listed modes of the remote files.
   */
  get(remotePath: string, localPath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return guardedDownload(this.context, this.setup.options.idleTimeout, remotePath, localPath, options, async (guard) => {
      const started = Date.now();
      const verify = options.verify ?? this.setup.options.verify;
      const { landed, verified } = await this.session(guard, async (conn) => {
        const source = absoluteRemote(conn.home, remotePath);
        const kind = await guard.step(remoteKind(conn.client, source));
        if (kind.kind === 'missing') throw new FtpRefusal('read', source, kind.reply, kind.code);
        const root = await placeDestination(
          runnerSide(this.context),
          localPath,
          { directory: kind.kind === 'directory', name: devicePaths.basename(source) },
          this.context,
        );
        const files: Array<{ remote: string; final: string; size: number; mode: number }> = [];
        if (kind.kind === 'file') {
          files.push({ remote: source, final: root, size: kind.size, mode: (await guard.step(remoteFileMode(conn.client, source))) ?? 0o644 });
        } else {
          for (const entry of await guard.step(listRemoteTree(conn.client, source))) {
            const local = localPathOf(root, entry.relative);
            if (entry.kind === 'directory') await mkdir(local, { recursive: true });
            else files.push({ remote: devicePaths.join(source, entry.relative), final: local, size: entry.size, mode: entry.mode ?? 0o644 });
          }
        }
        guard.setTotal(files.reduce((sum, file) => sum + file.size, 0));
        const partials = runnerPartials(guard);
        const arrived: LandedFile[] = [];
        for (const file of files) {
          const temp = stageRunnerFile(partials, file.final);
          await this.getFile(conn, guard, file.remote, temp);
          arrived.push({ temp, final: file.final, remote: file.remote, size: file.size, mode: options.mode ?? file.mode });
        }
        return { landed: arrived, verified: await commitRunnerFiles(guard, partials, arrived, verify, this.setup.runner, this.context) };
      });
      return {
        direction: 'get',
        method: 'ftp',
        local: localPath,
        remote: remotePath,
        files: landed.length,
        bytes: landed.reduce((sum, file) => sum + file.size, 0),
        durationMs: Date.now() - started,
        verified,
        ...(verified !== verify ? { note: SHA256_FALLBACK_NOTE } : {}),
      };
    });
  }

  /** Deletes a remote file (for cleanup in tests and benchmarks). */
  async removeFile(remotePath: string): Promise<void> {
    await this.withConnection(async (conn) => {
      const target = absoluteRemote(conn.home, remotePath);
      await refusalFor('delete', target, () => conn.client.remove(target));
    }).catch((error: unknown) => {
      throw this.describeFailure(`delete of ${remotePath}`, error);
    });
  }

  /** Closes every FTP connection of this host; transfers still running fail. */
  async close(): Promise<void> {
    this.closing = true;
    await this.pool.close();
  }

  /**
   * Runs `body` on a pooled connection for one transfer: the wait for a connection has its
   * own bound (not the idle timeout); a stopped transfer closes the connection under it;
   * server refusals become path errors (missing or denied, told apart by looking at the parent).
   */
  private session<T>(guard: TransferGuard, body: (conn: FtpConnection) => Promise<T>): Promise<T> {
    const waiting = guard.hush();
    const run = this.withConnection(async (conn) => {
      waiting();
      guard.check();
      const off = guard.onStop(() => conn.client.close());
      // A control connection that closes under a transfer ends it (basic-ftp does not always fail the transfer itself).
      const unwatch = conn.onLost((error) => guard.lose(error));
      // basic-ftp's own socket timeout (read when each command or data transfer starts;
      // `readonly` in its types only) stays behind the guard's, whose error says more.
      const ftpContext = conn.client.ftp as { timeout: number };
      const defaultTimeout = ftpContext.timeout;
      ftpContext.timeout = guard.idleTimeout + 1_000;
      try {
        return await body(conn);
      } catch (error) {
        if (error instanceof FtpRefusal && !guard.reason) throw await this.explainRefusal(conn, error);
        throw error;
      } finally {
        off();
        unwatch();
        ftpContext.timeout = defaultTimeout;
      }
    });
    return guard.step(run).catch((error: unknown) => {
      throw guard.reason ?? this.describeFailure(undefined, error);
    });
  }

  /** The device seen through FTP commands, for the path rules. */
  private side(conn: FtpConnection): FileSide {
    const { client } = conn;
    return {
      where: 'device',
      paths: devicePaths,
      kinds: async (paths) => {
        const kinds: PathKind[] = [];
        for (const p of paths) kinds.push(await destinationKind(client, p));
        return kinds;
      },
      makeDirectories: (dir) => ensureRemoteDir(client, dir),
    };
  }

  /** Uploads `file` to `remoteFile` (its temporary name); a refusal names its final path. */
  private async putFile(conn: FtpConnection, guard: TransferGuard, file: UploadFile, remoteFile: string): Promise<void> {
    const { local: localFile, size } = file;
    const source = createReadStream(localFile, { highWaterMark: READ_CHUNK });
    const counter = new ByteCounter((count) => guard.progress(count));
    // A read error destroys the counter, which basic-ftp watches: the upload then fails.
    const feeding = pipeline(source, counter).catch(() => undefined);
    try {
      await guard.step(refusalFor('write', file.final, () => conn.client.uploadFrom(counter, remoteFile)));
    } finally {
      source.destroy();
      await feeding;
    }
    if (counter.bytes !== size) {
      throw new TransferError(`${localFile} changed while it was uploaded to ${remoteFile}: ${counter.bytes} bytes sent, ${size} expected.`, {
        ...this.context,
        hint: 'Do not modify files while they are transferred, then retry.',
        kind: 'incomplete',
      });
    }
  }

  private async getFile(conn: FtpConnection, guard: TransferGuard, remoteFile: string, localFile: string): Promise<void> {
    const counter = new ByteCounter((count) => guard.progress(count));
    const file = createWriteStream(localFile);
    const writing = pipeline(counter, file);
    writing.catch(() => undefined); // awaited below; a failure before that must not go unhandled
    try {
      await guard.step(refusalFor('read', remoteFile, () => conn.client.downloadTo(counter, remoteFile)));
      await guard.step(writing);
    } catch (error) {
      // Not waited for: after a failed download basic-ftp may leave the stream half-ended;
      // the partial file is removed by the guard.
      counter.destroy();
      file.destroy();
      throw error;
    }
  }

  /** A refusal as a path error: missing, denied or not a directory, with the server's reply. */
  private async explainRefusal(conn: FtpConnection, refusal: FtpRefusal): Promise<LabwrightError> {
    const access = refusal.action === 'read' || refusal.action === 'get the size of' || refusal.action === 'list' ? 'r' : 'w';
    let kind: 'missing' | 'denied' | 'not-a-directory' | undefined;
    try {
      kind = refusal.code === 552 ? undefined : await explainRemotePath(conn.client, refusal.remotePath, access);
    } catch (error) {
      // The server refused and then stopped answering: its session ended (vsftpd says "500 OOPS: child died").
      return new TransferError(`the FTP session ended: the server answered "${refusal.reply}" and then ${messageOf(error)}.`, {
        ...this.context,
        hint: 'The device may have rebooted or its FTP server ended the session; check the device and retry.',
        cause: refusal,
        kind: 'lost',
      });
    }
    const why = kind ? failureText(kind) : `the server answered "${refusal.reply}"`;
    const reply = kind ? ` (the server answered "${refusal.reply}")` : '';
    return new TransferError(`cannot ${refusal.action} ${refusal.remotePath} on the device: ${why}${reply}.`, {
      ...this.context,
      hint: refusalHint(refusal, kind, this.setup.user),
      cause: refusal,
      kind: kind ?? 'failed',
    });
  }

  /** Removes partial files on a pooled connection (a file already gone counts as removed). */
  private async removeAll(paths: string[]): Promise<void> {
    await this.withConnection(async (conn) => {
      for (const p of paths) await conn.client.remove(p, true);
    });
  }

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
      idleTimeout: Math.max(options.idleTimeout, options.connectTimeout),
      path: networkPath,
      ...(this.setup.passiveCommands ? { passiveCommands: this.setup.passiveCommands } : {}),
    });
    const security = options.secure === false ? 'plain FTP' : options.secure === 'explicit' ? 'FTPS (explicit)' : 'FTPS (implicit)';
    this.setup.onConnection?.('connected', `${user}@${address}:${options.port} ${networkPath.description}, ${security}`);
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
      // (timeouts, lost data connections, a stopped transfer) may have left it in an unknown state.
      (error) => connectionBroken(error),
    );
  }

  /**
   * Turns a failure that is not a path problem into a labwright error saying what to do;
   * `what` (`delete of x`) leads the message outside transfers, whose guard names them itself.
   */
  private describeFailure(what: string | undefined, error: unknown): unknown {
    if (error instanceof LabwrightError) return error;
    const context = { ...this.context, cause: error };
    const lead = what ? `${what} failed: ` : '';
    if (error instanceof FtpRefusal) {
      return new TransferError(`${lead}${error.message}.`, { ...context, hint: refusalHint(error, undefined, this.setup.user) });
    }
    if (error instanceof FTPError) {
      return new TransferError(`${lead}the server answered "${error.message.trim()}".`, { ...context, hint: 'Check the paths and permissions on the device.' });
    }
    const message = messageOf(error);
    if (this.closing) {
      return new TransferError(`${lead}the host's FTP connections were closed during it (${message}).`, {
        ...context,
        hint: 'Wait for transfers to finish before closing the host.',
        kind: 'aborted',
      });
    }
    if (/Timeout \((data|control) socket\)/.test(message)) {
      return new TransferError(`${lead}the server made no progress for ${formatDuration(this.setup.options.idleTimeout)} (${message}).`, {
        ...context,
        hint: 'The device may be overloaded, out of space or rebooting; check it and retry.',
        kind: 'stalled',
      });
    }
    // Node's file-system errors (with the runner path they concern) are described by the transfer's guard.
    if (typeof (error as NodeJS.ErrnoException).path === 'string') return error;
    return new TransferError(`${lead}the FTP connection was lost (${message}).`, {
      ...context,
      hint: 'The device may have rebooted or its FTP server ended the session; check the device and retry.',
      kind: 'lost',
    });
  }
}

/** Whether a failed body leaves its FTP connection in an unknown state (refusals and verification failures do not). */
function connectionBroken(error: unknown): boolean {
  return !(
    error instanceof FtpRefusal ||
    error instanceof FTPError ||
    (error instanceof TransferError && error.kind !== 'stalled' && error.kind !== 'aborted' && error.kind !== 'lost')
  );
}

function refusalHint(refusal: FtpRefusal, kind: string | undefined, user: string): string {
  if (refusal.code === 552) return 'The device is out of space or over quota.';
  if (kind === 'missing') return 'Check the remote path; relative paths start at the FTP login directory.';
  if (refusal.action === 'read' || refusal.action === 'get the size of' || refusal.action === 'list') {
    return `Check that the remote path exists and that user "${user}" can read it; relative paths start at the FTP login directory.`;
  }
  return `Check that the remote directory exists and that user "${user}" may write there.`;
}
