/**
 * SFTP transfers: files and directories both ways with ssh2's pipelined fastPut / fastGet
 * (large requests, many in flight: they beat OpenSSH's client on the same work), each file
 * written under a temporary name, verified, then renamed. Each transfer has an SFTP session
 * of its own, opened under the connection's channel budget, so that a stalled or aborted
 * transfer can be cut off (its session ended) without touching others; a session whose
 * transfer succeeded is kept for the next one for SESSION_IDLE_MS, then closed so that its
 * channel slot comes back. Zero-size remote files are read to EOF: pseudo-files such as
 * /proc entries report size 0.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

import type { SFTPWrapper, Stats } from 'ssh2';

import type { SftpOptions } from '../config/schema.js';
import { messageOf, TransferError, type TransferFailure } from '../util/errors.js';
import { checkUploadDigests, uploadDigests } from './deviceShell.js';
import { guardedDownload, guardedUpload, type TransferGuard } from './guard.js';
import { devicePaths, expandHome, type FileSide, pathError, type PathKind, placeDestination, runnerPaths, uploadFiles } from './paths.js';
import { commitRunnerFiles, type LandedFile, runnerPartials, runnerSide, stageRunnerFile } from './runnerSide.js';
import type { LossSubscription, RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';
import { checkSize } from './verify.js';

/** An SFTP session, and its connection's state. */
export interface SftpSession {
  sftp: SFTPWrapper;
  onLost: LossSubscription;
  /** Whether the connection it runs on is still usable. */
  alive: () => boolean;
  /**
   * Marks the session's channel slot idle with a way to close it (another channel waiting
   * for a slot gets this one at once), or busy again (`undefined`).
   */
  idle?: (reclaim: (() => void) | undefined) => void;
}

/** How long a session outlives its transfer, waiting for the next one. */
const SESSION_IDLE_MS = 1_000;

/** A session with the transfer using it, if any. */
interface HeldSession extends SftpSession {
  closed: boolean;
  user: TransferGuard | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

/** What the SFTP strategy needs from its host. */
export interface SftpDeps {
  host: string;
  options: SftpOptions;
  /**
   * Opens an SFTP session under the connection's channel budget, waiting up to `slotWaitMs`
   * for a free channel (other transfers and commands hold them); the transfer ends it.
   */
  open: (slotWaitMs: number) => Promise<SftpSession>;
  /** For sha256 verification on the device. */
  runner: RemoteRunner;
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02) that name a path problem. */
const STATUS_FAILURE: Record<number, TransferFailure> = { 2: 'missing', 3: 'denied' };

function call<T>(body: (callback: (error: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => body((error, value) => (error ? reject(error) : resolve(value))));
}

function done(body: (callback: (error?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => body((error) => (error ? reject(error) : resolve())));
}

function kindOf(stats: Stats): PathKind {
  return stats.isDirectory() ? 'directory' : stats.isFile() ? 'file' : 'other';
}

export class SftpTransfer implements TransferStrategy {
  readonly method = 'sftp' as const;
  private home: string | undefined;
  /** Sessions whose transfer succeeded, most recent last. */
  private readonly idle: HeldSession[] = [];

  constructor(private readonly deps: SftpDeps) {}

  private get context() {
    return { host: this.deps.host, protocol: 'sftp' as const };
  }

  /**
   * A server refusal as a TransferError naming the path (missing / denied told apart by
   * status code). A runner file-system error (fastPut reads, fastGet writes a local file)
   * passes through: the guard describes it as the runner's.
   */
  private refusal(action: string, target: string, error: unknown): unknown {
    if (typeof (error as NodeJS.ErrnoException).path === 'string') return error;
    const kind = STATUS_FAILURE[(error as { code?: number }).code ?? -1];
    if (kind) return pathError(kind, action, target, 'device', this.context, error);
    return new TransferError(`cannot ${action} ${target} on the device: ${messageOf(error)}.`, {
      ...this.context,
      hint: 'Check the remote path and free space on the device.',
      cause: error,
    });
  }

  /**
   * A session for this transfer (an idle one when there is one): its loss, closing or errors
   * stop the transfer; a stop ends it. `end()` gives its channel back now (before commands
   * on the device that need one: with a small MaxSessions they would wait for it);
   * `release()` (after success) keeps it for the next transfer. Unreleased, it ends with
   * the transfer.
   */
  private async session(guard: TransferGuard): Promise<{ sftp: SFTPWrapper; end: () => void; release: () => void }> {
    let held = this.reuse();
    if (!held) {
      // Waiting for a channel slot is bounded by the transfer's own idle timeout, not counted against it twice.
      const opened = await guard.step(this.deps.open(guard.idleTimeout), { quiet: true });
      const fresh: HeldSession = { ...opened, closed: false, user: undefined, idleTimer: undefined };
      opened.sftp.on('error', (error: Error) => fresh.user?.lose(error));
      opened.sftp.once('close', () => {
        fresh.closed = true;
        fresh.user?.lose(new Error('the SFTP session closed'));
        this.forget(fresh);
      });
      held = fresh;
    }
    const session = held;
    session.user = guard;
    guard.watch(session.onLost);
    let settled = false;
    const end = () => {
      if (settled) return;
      settled = true;
      // Ending its own session is not a loss.
      session.user = undefined;
      session.sftp.end();
    };
    const release = () => {
      if (settled) return;
      settled = true;
      session.user = undefined;
      this.park(session);
    };
    guard.onStop(end);
    guard.onFinish(end);
    return { sftp: session.sftp, end, release };
  }

  /** An idle session still usable, if any. */
  private reuse(): HeldSession | undefined {
    for (let held = this.idle.pop(); held; held = this.idle.pop()) {
      clearTimeout(held.idleTimer);
      held.idle?.(undefined);
      if (!held.closed && held.alive()) return held;
      held.sftp.end();
    }
    return undefined;
  }

  /** Keeps a session for the next transfer, closing it after SESSION_IDLE_MS unused. */
  private park(held: HeldSession): void {
    if (held.closed || !held.alive()) return void held.sftp.end();
    const close = () => {
      this.forget(held);
      held.sftp.end();
    };
    held.idleTimer = setTimeout(close, SESSION_IDLE_MS);
    held.idle?.(close);
    held.idleTimer.unref?.();
    this.idle.push(held);
  }

  private forget(held: HeldSession): void {
    clearTimeout(held.idleTimer);
    const index = this.idle.indexOf(held);
    if (index >= 0) this.idle.splice(index, 1);
  }

  /** `~` as the login directory, resolved once (relative paths the server resolves itself). */
  private async resolve(sftp: SFTPWrapper, guard: TransferGuard, remote: string): Promise<string> {
    if (remote !== '~' && !remote.startsWith('~/')) return remote;
    this.home ??= await guard.step(call<string>((cb) => sftp.realpath('.', cb)));
    return expandHome(remote, this.home);
  }

  /** The device seen through SFTP, for the path rules. */
  private side(sftp: SFTPWrapper, guard: TransferGuard): FileSide {
    const stat = (p: string) => guard.step(call<Stats>((cb) => sftp.stat(p, cb)));
    return {
      where: 'device',
      paths: devicePaths,
      kinds: (paths) => Promise.all(paths.map((p) => stat(p).then(kindOf, (): PathKind => 'missing'))),
      makeDirectories: async (dir) => {
        // Find the deepest existing ancestor, then create downwards.
        const missing: string[] = [];
        for (let current = dir; ; current = devicePaths.dirname(current)) {
          const kind = await stat(current).then(kindOf, (): PathKind => 'missing');
          if (kind === 'directory') break;
          if (kind !== 'missing') throw pathError('not-a-directory', 'create directory', dir, 'device', this.context);
          missing.unshift(current);
          if (current === devicePaths.dirname(current)) break;
        }
        for (const part of missing) {
          await guard.step(done((cb) => sftp.mkdir(part, cb))).catch((error: unknown) => {
            throw this.refusal('create directory', part, error);
          });
        }
      },
    };
  }

  async put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
    return guardedUpload(this.context, this.deps.options.idleTimeout, localPath, remotePath, options, async (guard, source, totals) => {
      const started = Date.now();
      let { sftp, end, release } = await this.session(guard);
      const destination = await this.resolve(sftp, guard, remotePath);
      const root = await placeDestination(
        this.side(sftp, guard),
        destination,
        { directory: source.kind === 'directory', name: runnerPaths.basename(localPath) },
        this.context,
      );
      if (source.kind === 'directory') {
        for (const entry of source.entries) {
          if (entry.kind !== 'directory') continue;
          const dir = devicePaths.join(root, entry.relative);
          // An existing directory is merged into; anything else in the way fails the mkdir below.
          const exists = await guard.step(call<Stats>((cb) => sftp.stat(dir, cb))).then(
            (s) => s.isDirectory(),
            () => false,
          );
          if (!exists)
            await guard.step(done((cb) => sftp.mkdir(dir, cb))).catch((error: unknown) => {
              throw this.refusal('create directory', dir, error);
            });
        }
      }
      const partials = guard.partials('device', (paths) => this.remove(paths));
      const jobs = uploadFiles(source, localPath, root, options.mode);
      for (const job of jobs) {
        partials.paths.add(job.temp);
        let reported = 0;
        await guard
          .step(
            done((cb) =>
              sftp.fastPut(
                job.local,
                job.temp,
                {
                  chunkSize: this.deps.options.chunkSize,
                  concurrency: this.deps.options.concurrency,
                  mode: job.mode,
                  step: (transferred) => {
                    guard.progress(transferred - reported);
                    reported = transferred;
                  },
                },
                cb,
              ),
            ),
          )
          .catch((error: unknown) => {
            throw guard.reason ?? this.refusal('write', job.final, error);
          });
      }
      // Verified under the temporary names, then renamed: a final name only ever holds a whole file.
      const verify = options.verify ?? this.deps.options.verify;
      if (verify !== 'none') {
        const sizes = await Promise.all(jobs.map((job) => guard.step(call<Stats>((cb) => sftp.stat(job.temp, cb))).then((s) => s.size)));
        jobs.forEach((job, index) => checkSize(job.size, sizes[index]!, `upload of ${job.local}`, this.context));
      }
      if (verify === 'sha256') {
        end();
        const digests = await guard.step(uploadDigests(this.deps.runner, jobs, totals.bytes, this.context), { quiet: true });
        checkUploadDigests(jobs, digests, this.context);
        ({ sftp, end, release } = await this.session(guard));
      }
      for (const job of jobs) {
        guard.check();
        await this.rename(sftp, guard, job.temp, job.final);
        partials.paths.delete(job.temp);
      }
      release();
      return {
        direction: 'put',
        method: 'sftp',
        local: localPath,
        remote: remotePath,
        files: totals.files,
        bytes: totals.bytes,
        durationMs: Date.now() - started,
        verified: verify,
      };
    });
  }

  async get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult> {
    return guardedDownload(this.context, this.deps.options.idleTimeout, remotePath, localPath, options, async (guard) => {
      const started = Date.now();
      const { sftp, end, release } = await this.session(guard);
      const source = await this.resolve(sftp, guard, remotePath);
      const info = await guard.step(call<Stats>((cb) => sftp.stat(source, cb))).catch((error: unknown) => {
        throw guard.reason ?? this.refusal('read', source, error);
      });
      const directory = info.isDirectory();
      if (!directory && !info.isFile()) throw pathError('unsupported', 'read the special file', source, 'device', this.context);
      const root = await placeDestination(runnerSide(this.context), localPath, { directory, name: devicePaths.basename(source) }, this.context);
      const files: Array<{ remote: string; final: string; size: number; mode: number }> = [];
      if (directory) await this.plan(sftp, guard, source, root, files);
      else files.push({ remote: source, final: root, size: info.size, mode: info.mode & 0o7777 });
      guard.setTotal(files.reduce((sum, file) => sum + file.size, 0));
      const partials = runnerPartials(guard);
      const landed: LandedFile[] = [];
      for (const file of files) {
        const temp = stageRunnerFile(partials, file.final);
        // Pseudo-files report size 0: read them to EOF instead of trusting the size.
        const pseudo = file.size === 0;
        if (pseudo) file.size = await this.readToEnd(sftp, guard, file.remote, temp);
        else await this.fetch(sftp, guard, file.remote, temp);
        landed.push({ temp, final: file.final, remote: file.remote, size: file.size, mode: options.mode ?? file.mode, pseudo });
      }
      // Nothing below needs the session; sha256 runs a command on the device, which needs its channel.
      const verify = options.verify ?? this.deps.options.verify;
      if (verify === 'sha256') end();
      else release();
      const verified = await commitRunnerFiles(guard, partials, landed, verify, this.deps.runner, this.context);
      const bytes = landed.reduce((sum, file) => sum + file.size, 0);
      return {
        direction: 'get',
        method: 'sftp',
        local: localPath,
        remote: remotePath,
        files: landed.length,
        bytes,
        durationMs: Date.now() - started,
        verified,
      };
    });
  }

  /** Ends the idle sessions (running transfers end theirs). */
  async close(): Promise<void> {
    for (const held of this.idle.splice(0)) {
      clearTimeout(held.idleTimer);
      held.sftp.end();
    }
  }

  private async fetch(sftp: SFTPWrapper, guard: TransferGuard, remote: string, temp: string): Promise<void> {
    let reported = 0;
    await guard
      .step(
        done((cb) =>
          sftp.fastGet(
            remote,
            temp,
            {
              chunkSize: this.deps.options.chunkSize,
              concurrency: this.deps.options.concurrency,
              step: (transferred) => {
                guard.progress(transferred - reported);
                reported = transferred;
              },
            },
            cb,
          ),
        ),
      )
      .catch((error: unknown) => {
        throw guard.reason ?? this.refusal('read', remote, error);
      });
  }

  private async readToEnd(sftp: SFTPWrapper, guard: TransferGuard, remote: string, temp: string): Promise<number> {
    let bytes = 0;
    const stream = sftp.createReadStream(remote);
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      guard.progress(chunk.length);
    });
    await guard.step(pipeline(stream, createWriteStream(temp), { signal: guard.signal })).catch((error: unknown) => {
      throw guard.reason ?? this.refusal('read', remote, error);
    });
    return bytes;
  }

  /** Lists a remote tree: local directories are created as found, files collected. Links and special files are skipped. */
  private async plan(
    sftp: SFTPWrapper,
    guard: TransferGuard,
    remoteDir: string,
    localDir: string,
    files: Array<{ remote: string; final: string; size: number; mode: number }>,
  ): Promise<void> {
    const entries = await guard.step(call<Array<{ filename: string; attrs: Stats }>>((cb) => sftp.readdir(remoteDir, cb))).catch((error: unknown) => {
      throw guard.reason ?? this.refusal('list', remoteDir, error);
    });
    for (const entry of entries.sort((a, b) => (a.filename < b.filename ? -1 : 1))) {
      const remote = devicePaths.join(remoteDir, entry.filename);
      const local = runnerPaths.join(localDir, entry.filename);
      if (entry.attrs.isDirectory()) {
        await mkdir(local, { recursive: true });
        await this.plan(sftp, guard, remote, local, files);
      } else if (entry.attrs.isFile()) {
        files.push({ remote, final: local, size: entry.attrs.size, mode: entry.attrs.mode & 0o7777 });
      }
    }
  }

  /** Renames over an existing file: POSIX rename where the server has it, else remove and rename. */
  private async rename(sftp: SFTPWrapper, guard: TransferGuard, from: string, to: string): Promise<void> {
    const extensions = (sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
    const renamed =
      extensions['posix-rename@openssh.com'] === '1'
        ? guard.step(done((cb) => sftp.ext_openssh_rename(from, to, cb)))
        : guard
            .step(done((cb) => sftp.unlink(to, cb)))
            .catch(() => undefined)
            .then(() => guard.step(done((cb) => sftp.rename(from, to, cb))));
    await renamed.catch((error: unknown) => {
      throw guard.reason ?? this.refusal('rename the uploaded file to', to, error);
    });
  }

  /** Removes partial files through a fresh session (the transfer's own may have been cut off). */
  private async remove(paths: string[]): Promise<void> {
    const { sftp } = await this.deps.open(this.deps.options.idleTimeout);
    try {
      // A file that is already gone counts as removed.
      await Promise.all(
        paths.map((p) =>
          done((cb) => sftp.unlink(p, cb)).catch((error: unknown) => {
            if ((error as { code?: number }).code !== 2) throw error;
          }),
        ),
      );
    } finally {
      sftp.end();
    }
  }
}
