/**
 * A bounded pool of logged-in shells for stateless commands on hosts whose shells have no
 * cheap channels (telnet-only devices): `exec` borrows a shell, runs one command, and
 * returns it. Shells are opened lazily, at most `size` exist, a shell that died is
 * discarded, and waiting for a free one is bounded.
 */
import type { ShellOptions } from '../config/schema.js';
import { AbortedError, LabwrightError, TimeoutError } from '../util/errors.js';
import { abortReason, formatDuration } from '../util/time.js';
import { notStarted, type SessionCommandOptions, type SessionCommandOutcome, type SessionObserver, ShellSession } from './shellSession.js';
import type { ShellTransport } from './transport.js';

/** Options of a {@link ShellPool}. */
export interface ShellPoolOptions {
  transport: ShellTransport;
  shell: ShellOptions;
  /** Most shells open at once (telnet: `execPoolSize`). */
  size: number;
  /** Session names are `<prefix>#<n>`; default `exec`. */
  namePrefix?: string;
  /** Observer for each shell, given its name (transcripts). */
  observer?: (name: string) => SessionObserver | undefined;
}

/** setTimeout's largest delay (about 24.8 days); larger ones, Infinity included, would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  resolve(session: ShellSession): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Shells for concurrent stateless commands. */
export class ShellPool {
  private readonly all = new Set<ShellSession>();
  private readonly idle: ShellSession[] = [];
  private readonly waiters: Waiter[] = [];
  private counter = 0;
  private closed = false;

  constructor(private readonly options: ShellPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`shell pool size must be a positive integer, got ${options.size}`);
  }

  /** Most shells open at once. */
  get size(): number {
    return this.options.size;
  }

  /** Shells that exist now (busy or idle). */
  get open(): number {
    return this.all.size;
  }

  /**
   * Runs `command` on a free shell: waits for one at most `options.timeout` (then throws a
   * {@link TimeoutError}), after which the command has its full `timeout`. Throws when a
   * shell cannot be opened (refused login, unreachable host); the command's own failures
   * are in the outcome.
   */
  async run(command: string, options: SessionCommandOptions): Promise<SessionCommandOutcome> {
    let session: ShellSession;
    try {
      session = await this.acquire(options.timeout, options.signal);
    } catch (error) {
      if (error instanceof AbortedError) return notStarted(error.detail);
      throw error;
    }
    try {
      return await session.run(command, options);
    } finally {
      this.release(session);
    }
  }

  /**
   * Borrows a shell, waiting at most `timeoutMs` for one to be free. The shell may not be
   * open yet (it opens on first use). Give it back with {@link release}.
   */
  acquire(timeoutMs: number, signal?: AbortSignal): Promise<ShellSession> {
    if (this.closed) return Promise.reject(this.closedError());
    if (signal?.aborted) return Promise.reject(this.abortedError(signal));
    const ready = this.takeIdle() ?? this.create();
    if (ready) return Promise.resolve(ready);
    const waiting = new Promise<ShellSession>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            reject(
              new TimeoutError(`all ${this.options.size} exec shells stayed busy for ${formatDuration(timeoutMs)}; the command was not started.`, {
                host: this.options.transport.host,
                protocol: this.options.transport.protocol,
                hint: 'Run fewer commands at once, raise the timeout, or raise the pool size (telnet.execPoolSize).',
              }),
            );
          },
          Math.min(Math.max(0, timeoutMs), MAX_TIMER_MS),
        ),
      };
      this.waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const index = this.waiters.indexOf(waiter);
          if (index === -1) return;
          this.waiters.splice(index, 1);
          clearTimeout(waiter.timer);
          reject(this.abortedError(signal));
        },
        { once: true },
      );
    });
    return waiting;
  }

  /** Returns a borrowed shell. A shell that is not alive any more is closed and replaced on demand. */
  release(session: ShellSession): void {
    if (!this.all.has(session)) return;
    if (this.closed || !session.alive) {
      this.discard(session);
      // A waiter can have the freed slot.
      if (!this.closed && this.waiters.length > 0) {
        const fresh = this.create();
        if (fresh) this.handOver(fresh);
      }
      return;
    }
    if (this.waiters.length > 0) this.handOver(session);
    else this.idle.push(session);
  }

  /** Closes every shell; waiting callers are rejected. Busy shells close after their command. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(this.closedError());
    }
    this.idle.length = 0;
    const sessions = [...this.all];
    this.all.clear();
    await Promise.all(sessions.map((session) => session.close().catch(() => {})));
  }

  private takeIdle(): ShellSession | undefined {
    for (;;) {
      const session = this.idle.pop();
      if (!session) return undefined;
      if (session.alive) return session;
      this.discard(session); // died while idle (connection dropped)
    }
  }

  private create(): ShellSession | undefined {
    if (this.all.size >= this.options.size) return undefined;
    const name = `${this.options.namePrefix ?? 'exec'}#${++this.counter}`;
    const observer = this.options.observer?.(name);
    const session = new ShellSession({ transport: this.options.transport, name, shell: this.options.shell, ...(observer ? { observer } : {}) });
    this.all.add(session);
    return session;
  }

  private discard(session: ShellSession): void {
    this.all.delete(session);
    void session.close().catch(() => {});
  }

  private handOver(session: ShellSession): void {
    const waiter = this.waiters.shift();
    if (!waiter) {
      this.idle.push(session);
      return;
    }
    clearTimeout(waiter.timer);
    waiter.resolve(session);
  }

  private abortedError(signal: AbortSignal): AbortedError {
    return new AbortedError(`waiting for a free exec shell was aborted: ${abortReason(signal)}.`, {
      host: this.options.transport.host,
      protocol: this.options.transport.protocol,
    });
  }

  private closedError(): LabwrightError {
    return new LabwrightError('the exec shell pool is closed.', {
      host: this.options.transport.host,
      protocol: this.options.transport.protocol,
      hint: 'The host was closed; open it again to run commands.',
    });
  }
}
