/**
 * What keeps a transfer from hanging or lying, the same for every method: it counts
 * progress (and reports it), fails the transfer when nothing moved for its idle timeout, when
 * its caller's AbortSignal fires, or when the connection under it is lost (ssh2 never calls
 * back requests on a dead connection, so every wait is raced against the guard). Partial
 * files are registered with it ({@link PartialFiles}); when the transfer fails they are
 * removed, and those that could not be are named in the error. Strategies wrap each
 * transfer in {@link guardedUpload} / {@link guardedDownload} (or {@link guarded}).
 */
import type { ErrorProtocol, TransferFailure } from '../util/errors.js';
import { LabwrightError, messageOf, TransferError } from '../util/errors.js';
import { formatDuration, withTimeout } from '../util/time.js';
import { type LocalSource, readLocalSource, sourceTotals } from './localTree.js';
import { failureOfErrno, failureText } from './paths.js';
import type { LossSubscription, TransferOptions } from './types.js';

/** Which transfer a guard watches, for its errors. */
export interface TransferSpec {
  host: string;
  protocol: ErrorProtocol;
  direction: 'put' | 'get';
  /** Runner path (source of a put, destination of a get). */
  local: string;
  /** Device path (destination of a put, source of a get). */
  remote: string;
}

/**
 * Partial files (temporary names, staging directories) on one side of a transfer, removed
 * together if the transfer fails. Add a path before writing it; delete it once it has its
 * final name.
 */
export class PartialFiles {
  readonly paths = new Set<string>();
  constructor(
    readonly where: 'device' | 'runner',
    /** Removes the given paths (one round trip where possible). */
    readonly remove: (paths: string[]) => Promise<void>,
  ) {}
}

/** Bound on removing partial files after a failure. */
const CLEANUP_BOUND_MS = 5_000;
/** Progress callbacks are called at most this often (and once more at the end). */
const PROGRESS_INTERVAL_MS = 100;

const HINTS: Partial<Record<TransferFailure, string>> = {
  stalled: "The device may have hung, rebooted or lost its network: check it. For a slow device raise the transfer's timeout (or the method's idleTimeout).",
  lost: 'The device may have rebooted or dropped off the network; the next command reconnects.',
};

export class TransferGuard {
  private readonly controller = new AbortController();
  /** Aborted when the transfer must stop (stalled, aborted by the caller, connection lost). */
  readonly signal: AbortSignal = this.controller.signal;
  private stopped: TransferError | undefined;
  private done = 0;
  private total = 0;
  private lastActivity = Date.now();
  private lastReport = 0;
  private quiet = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly stopListeners = new Set<(reason: TransferError) => void>();
  private readonly unsubscribers: Array<() => void> = [];
  private readonly finishers: Array<() => void> = [];
  private readonly partialSets: PartialFiles[] = [];

  constructor(
    readonly spec: TransferSpec,
    /** Milliseconds without progress before the transfer counts as stalled. */
    readonly idleTimeout: number,
    private readonly options: Pick<TransferOptions, 'signal' | 'onProgress'> = {},
  ) {
    const { signal } = options;
    if (signal) {
      const onAbort = () => this.stop('aborted', `it was aborted${signal.reason === undefined ? '' : ` (${messageOf(signal.reason)})`}`, signal.reason);
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.unsubscribers.push(() => signal.removeEventListener('abort', onAbort));
      }
    }
    this.arm(idleTimeout);
  }

  /** Bytes moved so far. */
  get bytes(): number {
    return this.done;
  }

  /** Why the transfer was stopped, if it was. */
  get reason(): TransferError | undefined {
    return this.stopped;
  }

  /** Sets the total bytes the transfer moves (for progress reports and errors). */
  setTotal(total: number): void {
    this.total = total;
  }

  /** Counts `count` bytes moved: resets the idle timer and reports progress. */
  progress(count: number): void {
    this.done += count;
    this.lastActivity = Date.now();
    if (this.options.onProgress && this.lastActivity - this.lastReport >= PROGRESS_INTERVAL_MS) {
      this.lastReport = this.lastActivity;
      this.report();
    }
  }

  /** Fails the transfer when `subscribe`'s connection is lost. */
  watch(subscribe: LossSubscription): void {
    this.unsubscribers.push(subscribe((error) => this.lose(error)));
  }

  /** Fails the transfer: the connection under it is gone. */
  lose(error: Error): void {
    this.stop('lost', `the connection was lost (${messageOf(error)})`, error);
  }

  /** Runs `cleanup` when the transfer is stopped (at once if it already is); returns the unsubscribe function. */
  onStop(cleanup: (reason: TransferError) => void): () => void {
    if (this.stopped) {
      cleanup(this.stopped);
      return () => {};
    }
    this.stopListeners.add(cleanup);
    return () => this.stopListeners.delete(cleanup);
  }

  /**
   * Waits for `work`, or rejects as soon as the transfer is stopped. A step that finishes
   * counts as progress. `quiet` steps (waiting for a pooled connection, hashing a large file)
   * have their own bound and do not count against the idle timeout while they run. `work`
   * has started already: call {@link check} before a step that must not start after a stop
   * (giving files their final names).
   */
  step<T>(work: Promise<T>, options: { quiet?: boolean } = {}): Promise<T> {
    work.catch(() => {}); // settled below, or abandoned after a stop
    if (this.stopped) return Promise.reject(this.stopped);
    const loud = options.quiet ? this.hush() : undefined;
    return new Promise<T>((resolve, reject) => {
      const off = this.onStop(reject);
      work.then(
        (value) => {
          off();
          loud?.();
          this.lastActivity = Date.now();
          resolve(value);
        },
        (error: unknown) => {
          off();
          loud?.();
          reject(error);
        },
      );
    });
  }

  /** Suspends the idle timeout until the returned function is called (idempotent). */
  hush(): () => void {
    this.quiet++;
    let resumed = false;
    return () => {
      if (resumed) return;
      resumed = true;
      this.quiet--;
      this.lastActivity = Date.now();
    };
  }

  /** Runs `cleanup` once the transfer is over, whatever its outcome (after partial files were removed). */
  onFinish(cleanup: () => void): void {
    this.finishers.push(cleanup);
  }

  /** Throws the stop reason if the transfer was stopped. */
  check(): void {
    if (this.stopped) throw this.stopped;
  }

  /** A set of partial files on `where`, removed with `remove` if the transfer fails. */
  partials(where: 'device' | 'runner', remove: (paths: string[]) => Promise<void>): PartialFiles {
    const set = new PartialFiles(where, remove);
    this.partialSets.push(set);
    return set;
  }

  /** Reports the final count (so a completed transfer's last progress call is its total). */
  finish(): void {
    this.total = Math.max(this.total, this.done);
    if (this.options.onProgress) this.report();
  }

  /**
   * The error to throw for `error`: the stop reason when the guard stopped the transfer,
   * else `error` as a labwright error naming the transfer. Partial files are removed first
   * (bounded); those that remain are named in the message.
   */
  async failure(error: unknown): Promise<LabwrightError> {
    const base = this.stopped ?? this.prefixed(this.describe(error));
    const left = await this.removePartials();
    if (left.length === 0) return base;
    const shown = left
      .slice(0, 3)
      .map((p) => `${p.path} (on the ${p.where})`)
      .join(', ');
    const more = left.length > 3 ? ` and ${left.length - 3} more` : '';
    const detail = `${base.detail} Partial files remain at ${shown}${more}: remove them.`;
    const kind = base instanceof TransferError ? base.kind : 'failed';
    return new TransferError(detail, { host: base.host, protocol: base.protocol, hint: base.hint, cause: base, kind });
  }

  /** Stops timers and listeners; call once the transfer is over. */
  dispose(): void {
    clearTimeout(this.timer);
    for (const finisher of this.finishers.splice(0)) {
      try {
        finisher();
      } catch {
        // One cleanup failing must not keep the others from running.
      }
    }
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    this.stopListeners.clear();
  }

  /** `put of a to b` / `get of b to a`, for messages. */
  get what(): string {
    const { direction, local, remote } = this.spec;
    return direction === 'put' ? `put of ${local} to ${remote}` : `get of ${remote} to ${local}`;
  }

  private report(): void {
    try {
      this.options.onProgress?.(this.done, Math.max(this.total, this.done));
    } catch {
      // A throwing progress callback must not break the transfer.
    }
  }

  private arm(delay: number): void {
    this.timer = setTimeout(
      () => {
        if (this.stopped) return;
        const idle = Date.now() - this.lastActivity;
        if (this.quiet > 0 || idle < this.idleTimeout) return this.arm(this.quiet > 0 ? this.idleTimeout : this.idleTimeout - idle);
        this.stop('stalled', `nothing moved for ${formatDuration(this.idleTimeout)}`);
      },
      Math.max(1, delay),
    );
    this.timer.unref?.();
  }

  private stop(kind: TransferFailure, cause: string, error?: unknown): void {
    if (this.stopped) return;
    const { host, protocol } = this.spec;
    this.stopped = new TransferError(`${this.what} failed after ${this.done} of ${Math.max(this.total, this.done)} bytes: ${cause}.`, {
      host,
      protocol,
      hint: HINTS[kind],
      cause: error,
      kind,
    });
    clearTimeout(this.timer);
    this.controller.abort(this.stopped);
    for (const listener of [...this.stopListeners]) {
      try {
        listener(this.stopped);
      } catch {
        // Cleanups must not keep the others from running.
      }
    }
    this.stopListeners.clear();
  }

  /** A transfer error made to say which transfer failed and how far it got (`put of a to b failed after 5 of 9 bytes: ...`). */
  private prefixed(error: LabwrightError): LabwrightError {
    if (!(error instanceof TransferError) || error.detail.startsWith(this.what)) return error;
    return new TransferError(`${this.what} failed${this.progressText()}: ${error.detail}`, {
      host: error.host,
      protocol: error.protocol,
      hint: error.hint,
      cause: error.cause ?? error,
      kind: error.kind,
    });
  }

  /** ` after 5 of 9 bytes` once bytes moved, else nothing. */
  private progressText(): string {
    return this.done > 0 ? ` after ${this.done} of ${Math.max(this.total, this.done)} bytes` : '';
  }

  /** Any error as a labwright error about this transfer. */
  private describe(error: unknown): LabwrightError {
    if (error instanceof LabwrightError) return error;
    const { host, protocol } = this.spec;
    const errno = error as NodeJS.ErrnoException;
    // Node's file-system errors carry the runner path they concern; socket errors do not.
    if (typeof errno?.code === 'string' && typeof errno.path === 'string') {
      const kind = failureOfErrno(errno.code);
      const reason = kind === 'failed' ? messageOf(error) : failureText(kind);
      return new TransferError(`${this.what} failed${this.progressText()}: ${errno.path} on the runner: ${reason}.`, {
        host,
        protocol,
        hint: 'Check the local path, its permissions and free space.',
        cause: error,
        kind,
      });
    }
    return new TransferError(`${this.what} failed${this.progressText()}: ${messageOf(error)}.`, { host, protocol, cause: error });
  }

  private async removePartials(): Promise<Array<{ path: string; where: 'device' | 'runner' }>> {
    // A lost connection cannot remove anything on the device (and must not reconnect now).
    const lost = this.stopped?.kind === 'lost';
    const left = await Promise.all(
      this.partialSets.map(async (set) => {
        const paths = [...set.paths];
        set.paths.clear();
        if (paths.length === 0) return [];
        const removed =
          !(lost && set.where === 'device') &&
          (await withTimeout(set.remove(paths), CLEANUP_BOUND_MS, () => new Error('cleanup timed out')).then(
            () => true,
            () => false,
          ));
        return removed ? [] : paths.map((path) => ({ path, where: set.where }));
      }),
    );
    return left.flat();
  }
}

/** Options no method can honour are refused before anything moves. */
function refuseBadOptions(spec: TransferSpec, options: TransferOptions): void {
  const refuse = (detail: string) => {
    throw new TransferError(`${spec.direction} of ${spec.direction === 'put' ? spec.local : spec.remote}: ${detail}`, {
      host: spec.host,
      protocol: spec.protocol,
      kind: 'unsupported',
    });
  };
  const { timeout, mode } = options;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0)) refuse(`timeout must be a positive number of milliseconds, got ${String(timeout)}.`);
  if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777))
    refuse(`mode must be permission bits between 0 and 0o7777 (e.g. 0o644), got ${String(mode)}.`);
}

/**
 * Runs one transfer under a {@link TransferGuard}: `body` gets the guard; a failure becomes a
 * labwright error naming the transfer, after partial files were removed.
 */
export async function guarded<T>(spec: TransferSpec, idleTimeout: number, options: TransferOptions, body: (guard: TransferGuard) => Promise<T>): Promise<T> {
  refuseBadOptions(spec, options);
  const guard = new TransferGuard(spec, options.timeout ?? idleTimeout, options);
  try {
    // Once the body returned, the files have their final names: a late stop changes nothing.
    const result = await body(guard);
    guard.finish();
    return result;
  } catch (error) {
    throw await guard.failure(error);
  } finally {
    guard.dispose();
  }
}

/** Host and protocol of a strategy, for {@link guardedUpload} and {@link guardedDownload}. */
interface StrategyContext {
  host: string;
  protocol: ErrorProtocol;
}

/**
 * A put under a guard: the local source is read (before any connection: a missing local
 * path needs no device) and its total set; `body` moves it and returns the result.
 */
export function guardedUpload<T>(
  context: StrategyContext,
  idleTimeout: number,
  localPath: string,
  remotePath: string,
  options: TransferOptions,
  body: (guard: TransferGuard, source: LocalSource, totals: { files: number; bytes: number }) => Promise<T>,
): Promise<T> {
  return guarded({ ...context, direction: 'put', local: localPath, remote: remotePath }, idleTimeout, options, async (guard) => {
    const source = await readLocalSource(localPath);
    const totals = sourceTotals(source);
    guard.setTotal(totals.bytes);
    return body(guard, source, totals);
  });
}

/** A get under a guard. */
export function guardedDownload<T>(
  context: StrategyContext,
  idleTimeout: number,
  remotePath: string,
  localPath: string,
  options: TransferOptions,
  body: (guard: TransferGuard) => Promise<T>,
): Promise<T> {
  return guarded({ ...context, direction: 'get', local: localPath, remote: remotePath }, idleTimeout, options, body);
}
