/**
 * One console of one host: a single byte stream with no channels, shared over time.
 *
 * - The stream is opened on first use and reopened on the next use after it dropped
 *   (what a buffering terminal server kept meanwhile arrives then).
 * - Everything it prints goes to the console log listener, whoever is using it.
 * - One owner at a time: callers {@link ConsoleConnection.exclusive} queue in order, each
 *   bounded; nested calls inside an owner's body pass through (AsyncLocalStorage), so a
 *   boot sequence holds the console from start to end. A caller that waits past its bound
 *   gets a {@link ConsoleBusyError} naming the holder.
 * - Across processes on one runner a lock file per console endpoint keeps a second lab
 *   (another Playwright worker) from reading the same console; it waits, then fails
 *   clearly. Serial devices are also locked by the OS.
 * - Data goes to the current consumer (the shell mode's channel, a prompt-mode session, a
 *   login dialogue); taking over displaces the previous one, which learns of it.
 * - Terminal queries a program sends (cursor position `ESC[6n`, status `ESC[5n`) are
 *   answered, as a terminal would: BusyBox ash's line editor waits for the answer.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { ConnectionError, ConsoleBusyError, LabwrightError, messageOf } from '../util/errors.js';
import { ChangeSignal } from '../util/signal.js';
import { formatDuration } from '../util/time.js';
import type { ConsoleStream } from './consoleStream.js';

/** Receives the console's bytes while it is the current consumer. */
export interface ConsoleConsumer {
  data(bytes: Buffer): void;
  /** The stream ended under the consumer. */
  closed(error: Error): void;
  /** Another consumer took the console over; `by` says who. */
  displaced?(by: string): void;
}

/** Lifecycle of the connection, for logs and transcripts. */
export type ConsoleConnectionEvent = 'connected' | 'lost' | 'closed';

/** Options of a {@link ConsoleConnection}. */
export interface ConsoleConnectionOptions {
  /** Lab host name (errors). */
  host: string;
  /** Opens the stream (bounded by the opener). */
  open: () => Promise<ConsoleStream>;
  /** Identity of the console endpoint for the cross-process lock (`tcp:127.0.0.1:4555`); undefined: no lock file. */
  lockKey: string | undefined;
  /** Bound (ms) on waiting for the console while someone else holds it. */
  claimTimeout: number;
  /** Answer terminal queries (`ESC[6n`, `ESC[5n`). */
  answerQueries: boolean;
  /** Every byte the console printed, with its arrival time (the console log). */
  onBytes?: (bytes: Buffer, time: number) => void;
  onEvent?: (event: ConsoleConnectionEvent, detail?: string) => void;
}

/** Who holds the console, for busy errors. */
interface Holder {
  what: string;
  since: number;
}

/** A cursor position report for an 80x24 terminal, and "terminal OK". */
const CURSOR_QUERY = Buffer.from('\x1b[6n');
const CURSOR_ANSWER = '\x1b[1;1R';
const STATUS_QUERY = Buffer.from('\x1b[5n');
const STATUS_ANSWER = '\x1b[0n';

export class ConsoleConnection {
  private stream: ConsoleStream | undefined;
  private connecting: Promise<ConsoleStream> | undefined;
  private consumer: ConsoleConsumer | undefined;
  private releaseLock: (() => Promise<void>) | undefined;
  private closedByUs = false;
  /** Tail of the previous chunk, so a query split across chunks is still seen. */
  private queryTail = Buffer.alloc(0);
  /** Waiters for data or closure (waitFor). */
  private readonly changes = new ChangeSignal();

  private holder: Holder | undefined;
  private queue: (() => void)[] = [];
  private readonly owner = new AsyncLocalStorage<ConsoleConnection>();

  constructor(private readonly options: ConsoleConnectionOptions) {}

  /** What the stream is (`tcp 127.0.0.1:4555`), once it was opened. */
  get description(): string | undefined {
    return this.stream?.description;
  }

  /** Whether the stream is open now. */
  get connected(): boolean {
    return this.stream !== undefined && !this.stream.closed;
  }

  /**
   * Runs `body` as the console's only user. Calls queue in order; one waiting longer than
   * `timeoutMs` (default: the console's claimTimeout) fails with a {@link ConsoleBusyError}.
   * Calls made inside `body` pass straight through.
   */
  async exclusive<T>(what: string, body: () => Promise<T>, timeoutMs = this.options.claimTimeout): Promise<T> {
    if (this.owner.getStore() === this) return body();
    await this.acquire(what, timeoutMs);
    try {
      return await this.owner.run(this, body);
    } finally {
      this.release();
    }
  }

  private acquire(what: string, timeoutMs: number): Promise<void> {
    if (!this.holder) {
      this.holder = { what, since: Date.now() };
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        this.holder = { what, since: Date.now() };
        resolve();
      };
      const timer = setTimeout(() => {
        this.queue = this.queue.filter((waiting) => waiting !== grant);
        const holder = this.holder;
        reject(
          new ConsoleBusyError(
            `the console is busy: ${holder ? `${holder.what} has held it for ${formatDuration(Date.now() - holder.since)}` : 'another caller holds it'}, and ${what} waited ${formatDuration(timeoutMs)}.`,
            {
              host: this.options.host,
              protocol: 'console',
              hint: 'A console has one user at a time: await the other call first, hold the console for a sequence with console.exclusive(), or raise console.claimTimeout.',
            },
          ),
        );
      }, timeoutMs);
      this.queue.push(grant);
    });
  }

  private release(): void {
    this.holder = undefined;
    this.queue.shift()?.();
  }

  /** The open stream, connecting (or reconnecting) first. */
  ensure(): Promise<ConsoleStream> {
    if (this.stream && !this.stream.closed) return Promise.resolve(this.stream);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<ConsoleStream> {
    this.closedByUs = false;
    if (!this.releaseLock && this.options.lockKey) this.releaseLock = await this.lockEndpoint(this.options.lockKey);
    let stream: ConsoleStream;
    try {
      stream = await this.options.open();
    } catch (error) {
      await this.unlock();
      throw error;
    }
    this.stream = stream;
    this.queryTail = Buffer.alloc(0);
    stream.attach({
      data: (bytes) => this.receive(stream, bytes),
      closed: (error) => this.lost(stream, error),
    });
    this.options.onEvent?.('connected', stream.description);
    return stream;
  }

  /** Makes `consumer` the receiver of the console's bytes; the previous one is told it was displaced. */
  use(consumer: ConsoleConsumer, name: string): void {
    const previous = this.consumer;
    if (previous === consumer) return;
    this.consumer = consumer;
    previous?.displaced?.(name);
  }

  /** Stops delivering to `consumer` if it is the current one. */
  drop(consumer: ConsoleConsumer): void {
    if (this.consumer === consumer) this.consumer = undefined;
  }

  /** Whether `consumer` receives the console's bytes now. */
  isCurrent(consumer: ConsoleConsumer): boolean {
    return this.consumer === consumer;
  }

  /** Writes to the open stream now; throws when it is not connected (a shell's channel writes this way). */
  writeNow(data: string | Buffer): void {
    if (!this.stream || this.stream.closed) throw new Error('the console connection is closed');
    this.stream.write(data);
  }

  /** Writes to the console, connecting first. */
  async write(data: string | Buffer): Promise<void> {
    const stream = await this.ensure();
    stream.write(data);
  }

  /** Sends a BREAK where the carrier can; false where it cannot (raw TCP). */
  async sendBreak(): Promise<boolean> {
    return (await this.ensure()).sendBreak();
  }

  /** Resolves on the next data or closure, or after `ms`. */
  nextEvent(ms: number, signal?: AbortSignal): Promise<void> {
    return this.changes.next(ms, signal);
  }

  /** Closes the stream and releases the cross-process lock. The next use reconnects. */
  async close(): Promise<void> {
    this.closedByUs = true;
    const stream = this.stream;
    this.stream = undefined;
    await stream?.close();
    await this.unlock();
    if (stream) this.options.onEvent?.('closed', stream.description);
  }

  private wake(): void {
    this.changes.notify();
  }

  private receive(stream: ConsoleStream, bytes: Buffer): void {
    if (stream !== this.stream) return;
    this.options.onBytes?.(bytes, Date.now());
    if (this.options.answerQueries) this.answerQueries(stream, bytes);
    this.consumer?.data(bytes);
    this.wake();
  }

  private answerQueries(stream: ConsoleStream, bytes: Buffer): void {
    const window = this.queryTail.length > 0 ? Buffer.concat([this.queryTail, bytes]) : bytes;
    const answers: string[] = [];
    for (const [query, answer] of [
      [CURSOR_QUERY, CURSOR_ANSWER],
      [STATUS_QUERY, STATUS_ANSWER],
    ] as const) {
      // Only queries that end in this chunk: one that ended in the previous chunk was answered then.
      let at = window.indexOf(query);
      while (at !== -1) {
        if (at + query.length > this.queryTail.length) answers.push(answer);
        at = window.indexOf(query, at + 1);
      }
    }
    this.queryTail = Buffer.from(window.subarray(Math.max(0, window.length - (CURSOR_QUERY.length - 1))));
    for (const answer of answers) {
      try {
        stream.write(answer);
      } catch {
        // The stream is gone; its close event reports it.
      }
    }
  }

  private lost(stream: ConsoleStream, error: Error | undefined): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    if (!this.closedByUs) {
      const cause = error ? messageOf(error) : 'the other end closed the connection';
      const lostError = new ConnectionError(error ? 'reset' : 'closed', `the console connection (${stream.description}) was lost: ${cause}.`, {
        host: this.options.host,
        protocol: 'console',
        hint: 'The terminal server dropped it (or the board was powered off); the next console call reconnects.',
        cause: error,
      });
      this.options.onEvent?.('lost', cause);
      const consumer = this.consumer;
      consumer?.closed(lostError);
    }
    this.wake();
  }

  /** Takes the runner-wide lock of a console endpoint, waiting up to claimTimeout. */
  private async lockEndpoint(key: string): Promise<() => Promise<void>> {
    const dir = path.join(os.tmpdir(), 'labwright-consoles');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, key.replace(/[^A-Za-z0-9_.-]/g, '_'));
    writeFileSync(file, '', { flag: 'a' });
    const info = `${file}.owner`;
    const deadline = Date.now() + this.options.claimTimeout;
    for (;;) {
      try {
        const release = await lockfile.lock(file, { stale: 10_000, update: 2_000, realpath: false, onCompromised: () => {} });
        writeFileSync(info, `pid ${process.pid} (${process.title}) since ${new Date().toISOString()}`);
        return async () => {
          await release().catch(() => {});
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') {
          throw new LabwrightError(`cannot take the console lock ${file}: ${messageOf(error)}.`, {
            host: this.options.host,
            protocol: 'console',
            cause: error,
          });
        }
        if (Date.now() >= deadline) {
          let owner = 'another process';
          try {
            owner = readFileSync(info, 'utf8').trim() || owner;
          } catch {}
          throw new ConsoleBusyError(
            `the console ${key} is in use by another labwright process on this runner (${owner}); waited ${formatDuration(this.options.claimTimeout)}.`,
            {
              host: this.options.host,
              protocol: 'console',
              hint: 'One lab at a time reads a console: give the tests that use it a test lock (exclusive()), run them in one worker, or close the other lab first.',
            },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  private async unlock(): Promise<void> {
    const release = this.releaseLock;
    this.releaseLock = undefined;
    await release?.();
  }
}
