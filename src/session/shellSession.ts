/**
 * ShellSession: a persistent shell on any transport (SSH pty, telnet, local bash) with
 * marker-delimited command output, exit codes, expect/response, timeouts that recover
 * the shell with an interrupt, and a dead-shell detector that rebuilds on next use.
 * See wire.ts for what is typed and why it cannot be confused with output.
 */
import { Mutex } from 'async-mutex';

import type { ShellOptions } from '../config/schema.js';
import { AbortedError, ExpectTimeoutError, LabwrightError, messageOf, SessionClosedError } from '../util/errors.js';
import { quoteForMessage, registerSecret } from '../util/secrets.js';
import { ChangeSignal } from '../util/signal.js';
import { abortable, abortReason, anySignal, formatDuration, withTimeout } from '../util/time.js';
import { LineSplitter, TextCleaner } from './text.js';
import type { ShellChannel, ShellTransport } from './transport.js';
import { type CommandMarkers, END_LINE_TAIL, MarkerFactory, parseFamily, TYPED_RUN_LINE } from './wire.js';

/** An expect/response pair: whenever `pattern` appears in a command's output, `response` is typed. */
export interface ExpectRule {
  /** Pattern looked for in the output (ANSI escapes removed, CRLF as LF). Strings match literally. */
  pattern: RegExp | string;
  /** Text typed when the pattern appears; a newline is added. */
  response: string;
  /** Mask the response in transcripts and logs (passwords). */
  secret?: boolean;
}

/** Options of one command on a session. */
export interface SessionCommandOptions {
  /** Bound on the command in ms; on expiry the shell is interrupted and recovered. */
  timeout: number;
  expects?: readonly ExpectRule[] | undefined;
  /** Called with each complete line of output as it arrives. */
  onLine?: ((line: string) => void) | undefined;
  /** Ends the command early, like its timeout does (interrupt, recover), or keeps it from starting. */
  signal?: AbortSignal | undefined;
}

/** What a shell session reports for one command. */
export interface SessionCommandOutcome {
  /** Output text: UTF-8, ANSI escapes removed, CRLF turned into LF. */
  output: string;
  /** Output bytes exactly as the shell printed them between the markers. */
  outputBytes: Buffer;
  /** The command's exit code, or null when it did not finish. */
  exitCode: number | null;
  timedOut: boolean;
  /** Whether the caller's signal ended the command (or kept it from starting). */
  aborted: boolean;
  durationMs: number;
  /** Why the command did not complete normally (timeout, abort, shell lost), or why it has no exit status. */
  error?: string;
  /** The command ran to its end on a console that reports no exit status (prompt mode); exitCode is null. */
  statusUnknown?: boolean;
}

/** What the host layer needs of a session that runs commands: a shell, or a console's prompt mode. */
export interface CommandSession {
  readonly protocol: ShellTransport['protocol'];
  /** Whether the session is running; one that is not reopens on next use. */
  readonly alive: boolean;
  run(command: string, options: SessionCommandOptions): Promise<SessionCommandOutcome>;
  send(text: string, options?: { secret?: boolean; signal?: AbortSignal | undefined }): Promise<void>;
  expect(pattern: RegExp | string, options: { timeout: number; signal?: AbortSignal | undefined }): Promise<ExpectMatch>;
}

/** What `expect()` found. */
export interface ExpectMatch {
  /** The regular expression match. */
  match: RegExpExecArray;
  /** Text received before the match. */
  before: string;
  /** Text received up to and including the match. */
  text: string;
}

/** Session lifecycle events, for transcripts. */
export type SessionLifecycle = 'opened' | 'closed' | 'lost' | 'recovered' | 'rebuilt';

/** Receives what a session does, for transcripts and live logs. Must not throw. */
export interface SessionObserver {
  /** A complete line of output that arrived outside a command (after `send`, background jobs). */
  idleLine?(line: string): void;
  /** Text typed into the session by `send()` or an expect response (`secret` ones are masked by the observer). */
  sent?(text: string, secret: boolean): void;
  lifecycle?(event: SessionLifecycle, detail?: string): void;
}

/** Options of a {@link ShellSession}. */
export interface ShellSessionOptions {
  transport: ShellTransport;
  /** Session name shown in errors and transcripts (`default`, or the name given to openSession). */
  name: string;
  shell: ShellOptions;
  observer?: SessionObserver;
  /**
   * Wraps every serialised operation (open, run, send, expect, close) once the session's
   * own queue reached it: a console shares one stream between its modes, and this is
   * where a shell waits for its turn. `what` describes the operation for busy errors.
   */
  exclusive?: <T>(what: string, body: () => Promise<T>) => Promise<T>;
}

type State = 'closed' | 'open' | 'dead';

/** Most text kept for `expect()` between matches; older text is still reported to observers. */
const IDLE_TEXT_LIMIT = 1024 * 1024;
/** Most recovery steps tried after a timeout before the shell is declared dead. */
const MAX_RECOVERY_STEPS = 5;

/** One command in flight: consumes output bytes until its end marker. */
class CommandRun {
  phase: 'start' | 'output' | 'recover' | 'done' = 'start';
  readonly chunks: Buffer[] = [];
  readonly cleaner = new TextCleaner();
  readonly lines: LineSplitter;
  text = '';
  expectText = '';
  exitCode: number | null = null;
  timedOut = false;
  aborted = false;
  done!: () => void;
  readonly finished = new Promise<void>((resolve) => (this.done = resolve));

  constructor(
    readonly markers: CommandMarkers,
    readonly expects: { pattern: RegExp; response: string; secret: boolean }[],
    onLine: ((line: string) => void) | undefined,
  ) {
    this.lines = new LineSplitter((line) => onLine?.(line));
  }

  /** Appends output bytes; returns the cleaned text they completed. */
  append(bytes: Buffer): string {
    if (bytes.length === 0) return '';
    this.chunks.push(bytes);
    const text = this.cleaner.push(bytes);
    this.text += text;
    this.lines.push(text);
    return text;
  }
}

/** Length of the longest tail of `buffer` that is a prefix of `\r\n` + marker, `\n` + marker or marker. */
export function markerPrefixLength(buffer: Buffer, marker: Buffer): number {
  const max = Math.min(buffer.length, marker.length + 2);
  for (let length = max; length > 0; length--) {
    const from = buffer.length - length;
    // Compare in place against the three possible beginnings, without allocating.
    for (const lead of [2, 1, 0]) {
      if (length > marker.length + lead) continue;
      let matches = true;
      for (let i = 0; i < length && matches; i++) {
        const expected = i < lead ? (lead === 2 && i === 0 ? 0x0d : 0x0a) : marker[i - lead]!;
        matches = buffer[from + i] === expected;
      }
      if (matches) return length;
    }
  }
  return 0;
}

/** The outcome of a command that was aborted before it started. */
export function notStarted(why: string): SessionCommandOutcome {
  return { output: '', outputBytes: Buffer.alloc(0), exitCode: null, timedOut: false, aborted: true, durationMs: 0, error: `not started: ${why}` };
}

/** A pattern as a stateless RegExp: strings match literally; g and y flags are dropped. */
export function toRegExp(pattern: RegExp | string): RegExp {
  if (typeof pattern === 'string') return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // A global or sticky flag would make exec() stateful between calls.
  return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
}

/**
 * A persistent shell. Commands, sends and expects are serialised: concurrent calls queue
 * and never interleave. Opening is lazy; a shell that died is rebuilt on the next call.
 */
export class ShellSession implements CommandSession {
  readonly name: string;
  private readonly transport: ShellTransport;
  private readonly options: ShellOptions;
  private readonly observer: SessionObserver;
  private readonly mutex = new Mutex();
  private readonly gate: ShellSessionOptions['exclusive'];

  private state: State = 'closed';
  private channel: ShellChannel | undefined;
  private generation = 0;
  private markers = new MarkerFactory();
  private buffer: Buffer = Buffer.alloc(0);
  private current: CommandRun | undefined;
  private readonly changes = new ChangeSignal();
  private lostReason: string | undefined;
  /** True while the opening handshake runs: output then belongs to the handshake, not to expect(). */
  private handshaking = false;
  /** A command changed the terminal's settings (its end marker line changed, or typed text came back): set them back. */
  private renormalise = false;
  /** Aborts whatever holds the session now; close() fires it so it never waits behind a command. */
  private holder = new AbortController();
  /** Set by close(): an interrupted command is not worth recovering, the shell goes anyway. */
  private closeRequested = false;

  private idleCleaner = new TextCleaner();
  private idleText = '';
  private readonly idleLines: LineSplitter;

  constructor(options: ShellSessionOptions) {
    this.name = options.name;
    this.transport = options.transport;
    this.options = options.shell;
    this.observer = options.observer ?? {};
    this.gate = options.exclusive;
    this.idleLines = new LineSplitter((line) => this.observer.idleLine?.(line));
  }

  /** Protocol of the underlying shell. */
  get protocol(): ShellTransport['protocol'] {
    return this.transport.protocol;
  }

  /** Whether a shell is running and answering. A session that is not alive reopens on next use. */
  get alive(): boolean {
    return this.state === 'open';
  }

  /**
   * Runs one shell command and reports its output and exit code. Never throws for the
   * command's own failures (non-zero exit, timeout, lost shell); those are in the outcome.
   * Throws when the shell cannot be opened at all.
   */
  async run(command: string, options: SessionCommandOptions): Promise<SessionCommandOutcome> {
    const started = Date.now();
    try {
      return await this.locked(options.signal, `shell command ${quoteForMessage(command, 60, 'start')}`, (signal) =>
        this.runUnlocked(command, { ...options, signal }),
      );
    } catch (error) {
      // Aborted while queued behind another command: it never started.
      if (!(error instanceof AbortedError)) throw error;
      return { ...notStarted(error.detail), durationMs: Date.now() - started };
    }
  }

  /** Opens the shell now instead of on first use. */
  open(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    return this.locked(options.signal, 'opening the shell', (signal) => this.ensureOpen(signal));
  }

  /** Types raw text into the shell (include the line ending yourself). */
  send(text: string, options: { secret?: boolean; signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (options.secret) registerSecret(text.replace(/\r?\n$/, ''));
    return this.locked(options.signal, 'send', async (signal) => {
      await this.ensureOpen(signal);
      this.write(text);
      this.observer.sent?.(text, options.secret ?? false);
    });
  }

  /**
   * Runs `body` after every earlier operation of this session, inside the transport's gate
   * if any (a console's turn), with a signal that fires when the caller's does or when
   * close() wants the session. Waiting for the session ends with an {@link AbortedError}
   * when the caller's signal fires first.
   */
  private async locked<T>(signal: AbortSignal | undefined, what: string, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const release = await abortable(
      this.mutex.acquire(),
      signal,
      () => this.abortedError(signal!, what),
      (late) => late(),
    );
    this.holder = new AbortController();
    const run = () => body(anySignal(signal, this.holder.signal)!);
    try {
      return await (this.gate ? this.gate(`${what} (session "${this.name}")`, run) : run());
    } finally {
      release();
    }
  }

  private abortedError(signal: AbortSignal, what: string): AbortedError {
    return new AbortedError(`${what} on session "${this.name}" was aborted: ${abortReason(signal)}.`, {
      host: this.transport.host,
      protocol: this.transport.protocol,
      hint: 'Nothing else is needed: the session stays usable.',
    });
  }

  /**
   * Waits until `pattern` appears in the output received since the last `expect()` (or
   * since the last command) and consumes the text up to the end of the match.
   */
  expect(pattern: RegExp | string, options: { timeout: number; signal?: AbortSignal | undefined }): Promise<ExpectMatch> {
    return this.locked(options.signal, `expect ${String(pattern)}`, async (signal) => {
      await this.ensureOpen(signal);
      const regex = toRegExp(pattern);
      const started = Date.now();
      for (;;) {
        const match = regex.exec(this.idleText);
        if (match) {
          const end = match.index + match[0].length;
          const result = { match, before: this.idleText.slice(0, match.index), text: this.idleText.slice(0, end) };
          this.idleText = this.idleText.slice(end);
          return result;
        }
        if (this.state !== 'open') {
          throw new SessionClosedError(`shell "${this.name}" ended while waiting for ${String(regex)}${this.lostReason ? ` (${this.lostReason})` : ''}.`, {
            host: this.transport.host,
            protocol: this.transport.protocol,
            hint: 'The next command opens a new shell.',
          });
        }
        if (signal.aborted) throw this.abortedError(signal, `expect ${String(regex)}`);
        const left = options.timeout - (Date.now() - started);
        if (left <= 0) {
          throw new ExpectTimeoutError(
            `expect on session "${this.name}": ${String(regex)} not seen within ${formatDuration(options.timeout)}; last output: ${quoteForMessage(this.idleText, 500)}`,
            this.idleText,
            {
              host: this.transport.host,
              protocol: this.transport.protocol,
              hint: 'Check the pattern against the output above, or raise the timeout.',
            },
          );
        }
        await this.nextEvent(left, signal);
      }
    });
  }

  /**
   * Closes the shell. A command still running is ended at once (its outcome says so) rather
   * than waited for. The session can be used again afterwards (it reopens).
   */
  async close(): Promise<void> {
    this.closeRequested = true;
    this.holder.abort(new Error('the session was closed'));
    try {
      await this.locked(undefined, 'close', async () => {
        if (this.state === 'open') this.observer.lifecycle?.('closed');
        await this.dropChannel();
        this.state = 'closed';
      });
    } finally {
      this.closeRequested = false;
    }
  }

  // ---- opening and closing ------------------------------------------------------------

  private async ensureOpen(signal?: AbortSignal): Promise<void> {
    if (this.state === 'open' && this.channel) return;
    if (signal?.aborted) throw this.abortedError(signal, 'opening the shell');
    const rebuilding = this.state === 'dead';
    await this.dropChannel();
    this.markers = new MarkerFactory();
    this.buffer = Buffer.alloc(0);
    this.idleText = '';
    this.idleCleaner = new TextCleaner();
    this.lostReason = undefined;
    const generation = ++this.generation;
    const context = { host: this.transport.host, protocol: this.transport.protocol } as const;
    const bound = this.options.openTimeout;

    // Transports bound their own waits and explain them; this is the safety net.
    const safety = Math.max(bound, this.transport.maxOpenMs ?? 0) + 5_000;
    const opening = this.transport.open({
      data: (chunk) => {
        if (generation === this.generation) this.onData(chunk);
      },
      closed: (reason) => {
        if (generation === this.generation) this.onClosed(reason);
      },
    });
    // A shell that arrives after we gave up must not stay logged in.
    const closeLate = (late: ShellChannel) => void late.close();
    const channel = await withTimeout(
      abortable(opening, signal, () => this.abortedError(signal!, 'opening the shell'), closeLate),
      safety,
      () => {
        opening.then(closeLate, () => {});
        return new SessionClosedError(`could not start a shell within ${formatDuration(safety)}.`, {
          ...context,
          hint: 'Check that the host answers, or raise shell.openTimeout.',
        });
      },
    );
    this.channel = channel;
    this.state = 'open';
    this.handshaking = true;

    // A probe asks the shell's family (how its builtins are reached), then the setup for that
    // family ends with a handshake marker: everything before it (banner, motd, echo) is dropped.
    const deadline = Date.now() + bound;
    const nl = this.transport.newline;
    const probe = this.markers.forNonce('0');
    this.write(this.markers.familyProbeLine(probe) + nl);
    let answered = await this.waitForMarker(probe.recovery, bound, signal);
    if (answered !== undefined) {
      this.markers.family = parseFamily(answered);
      const handshake = this.markers.forNonce('1');
      const lines = [...this.markers.setupLines({ pty: this.transport.pty }), this.markers.recoveryLine(handshake)];
      this.write(lines.map((line) => line + nl).join(''));
      answered = await this.waitForMarker(handshake.recovery, deadline - Date.now(), signal);
    }
    if (answered !== undefined && this.transport.syncAfterSetup) {
      // Replies to terminal queries the shell sent while its line editor was still on may
      // reach it after the editor was turned off, as the start of the next typed line.
      // They were sent before this line (one ordered stream), so it absorbs them.
      const sync = this.markers.forNonce('2');
      this.write(nl + this.markers.recoveryLine(sync) + nl);
      answered = await this.waitForMarker(sync.recovery, deadline - Date.now(), signal);
    }
    this.handshaking = false;
    this.renormalise = false;
    if (answered === undefined && signal?.aborted) {
      await this.dropChannel();
      this.state = 'dead';
      throw this.abortedError(signal, 'opening the shell');
    }
    if (answered === undefined) {
      const seen = quoteForMessage(this.buffer.toString('utf8'), 300);
      await this.dropChannel();
      this.state = 'dead';
      throw new SessionClosedError(
        `the shell did not answer labwright's setup within ${formatDuration(bound)}${this.lostReason ? ` (${this.lostReason})` : ''}; last output: ${seen}.`,
        {
          ...context,
          hint:
            'The login shell must be a POSIX shell (sh, bash, ash, dash, zsh, mksh) whose builtin printf labwright can call: a function named `builtin` (bash, zsh) hides it. ' +
            'Set shell.command to start a clean shell, fix the profile, or raise shell.openTimeout.',
        },
      );
    }
    this.observer.lifecycle?.(rebuilding ? 'rebuilt' : 'opened', rebuilding ? this.lostReason : undefined);

    for (const command of this.options.init) {
      const outcome = await this.runUnlocked(command, { timeout: bound, signal });
      if (outcome.exitCode !== 0) {
        throw new LabwrightError(
          `shell init command ${quoteForMessage(command, 200, 'start')} ${outcome.error ?? `exited with ${outcome.exitCode}`}; output: ${quoteForMessage(outcome.output, 300)}.`,
          { ...context, hint: 'Fix or remove it in shell.init of the lab config.' },
        );
      }
    }
  }

  private async dropChannel(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    this.generation++;
    if (channel) {
      try {
        await withTimeout(channel.close(), 5_000, () => new Error('close timed out'));
      } catch {
        // The shell is being discarded; a slow or failing close must not block the caller.
      }
    }
    this.wake();
  }

  // ---- data flow ----------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    const run = this.current;
    if (run && run.phase !== 'done') {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.processRun(run);
    } else if (this.state === 'open' && !this.handshaking) {
      this.takeIdle(chunk);
    } else {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    }
    this.wake();
  }

  /** Output outside a command goes to expect() and to observers. */
  private takeIdle(chunk: Buffer): void {
    const text = this.idleCleaner.push(chunk);
    if (!text) return;
    this.idleLines.push(text);
    this.idleText += text;
    if (this.idleText.length > IDLE_TEXT_LIMIT) this.idleText = this.idleText.slice(-IDLE_TEXT_LIMIT / 2);
  }

  private onClosed(reason: Error | undefined): void {
    const wasOpen = this.state === 'open';
    this.state = 'dead';
    this.channel = undefined;
    this.lostReason = reason ? messageOf(reason) : 'the shell exited';
    if (wasOpen && !this.handshaking) this.observer.lifecycle?.('lost', this.lostReason);
    const run = this.current;
    if (run && run.phase !== 'done') {
      run.phase = 'done';
      run.done();
    }
    this.wake();
  }

  private wake(): void {
    this.changes.notify();
  }

  /** Resolves on the next data or close event, after `ms`, or when `signal` fires. */
  private nextEvent(ms: number, signal?: AbortSignal): Promise<void> {
    return this.changes.next(ms, signal);
  }

  /**
   * Waits until `marker` followed by a line end is in the buffer, and drops everything up to
   * it. Resolves with the rest of the marker's line (CR removed), or undefined on timeout.
   */
  private async waitForMarker(marker: Buffer, ms: number, signal?: AbortSignal): Promise<string | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const index = this.buffer.indexOf(marker);
      if (index !== -1) {
        const lineEnd = this.buffer.indexOf(0x0a, index + marker.length);
        if (lineEnd !== -1) {
          const rest = this.buffer
            .subarray(index + marker.length, lineEnd)
            .toString('latin1')
            .replace(/\r+$/, '');
          this.buffer = this.buffer.subarray(lineEnd + 1);
          return rest;
        }
      } else if (this.buffer.length > 64 * 1024) {
        // Keep memory bounded while a runaway program prints; a marker cannot start earlier.
        this.buffer = this.buffer.subarray(this.buffer.length - marker.length);
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.state !== 'open' || signal?.aborted) return undefined;
      await this.nextEvent(left, signal);
    }
  }

  private write(data: string): void {
    if (!this.channel || this.state !== 'open') {
      throw new SessionClosedError(`shell "${this.name}" is not running${this.lostReason ? ` (${this.lostReason})` : ''}.`, {
        host: this.transport.host,
        protocol: this.transport.protocol,
        hint: 'The next command opens a new shell.',
      });
    }
    this.channel.write(data);
  }

  // ---- commands ---------------------------------------------------------------------

  private async runUnlocked(command: string, options: SessionCommandOptions, attempt = 0): Promise<SessionCommandOutcome> {
    const { signal } = options;
    if (signal?.aborted) return notStarted(this.abortedError(signal, 'a command').detail);
    try {
      await this.ensureOpen(signal);
    } catch (error) {
      if (error instanceof AbortedError) return notStarted(error.detail);
      throw error;
    }
    const started = Date.now();
    const markers = this.markers.next();
    const expects = (options.expects ?? []).map((rule) => {
      // A program may echo a secret response; registering it masks that echo everywhere.
      if (rule.secret) registerSecret(rule.response);
      return { pattern: toRegExp(rule.pattern), response: rule.response, secret: rule.secret ?? false };
    });
    const run = new CommandRun(markers, expects, options.onLine);

    // Anything already received belongs to earlier activity.
    this.flushIdle();
    this.buffer = Buffer.alloc(0);
    this.current = run;
    const nl = this.transport.newline;
    try {
      const lines = this.markers.commandLines(command, markers, this.options.maxLineLength);
      this.write(lines.map((line) => line + nl).join(''));
    } catch (error) {
      this.current = undefined;
      if (error instanceof SessionClosedError && attempt === 0) return this.runUnlocked(command, options, attempt + 1);
      return this.outcome(run, started, messageOf(error));
    }

    let timer: NodeJS.Timeout | undefined;
    let stopWatching = () => {};
    const ended = await Promise.race([
      run.finished.then(() => 'done' as const),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(1, options.timeout));
      }),
      new Promise<'aborted'>((resolve) => {
        if (!signal) return;
        const onAbort = () => resolve('aborted');
        signal.addEventListener('abort', onAbort, { once: true });
        stopWatching = () => signal.removeEventListener('abort', onAbort);
      }),
    ]);
    clearTimeout(timer);
    stopWatching();

    if (ended !== 'done' && run.phase !== 'done') {
      const neverStarted = run.phase === 'start';
      if (ended === 'timeout') run.timedOut = true;
      else run.aborted = true;
      // What was held back as a possible marker start is output after all.
      if (run.phase === 'output' && this.buffer.length > 0) run.append(Buffer.from(this.buffer));
      this.buffer = Buffer.alloc(0);
      run.phase = 'recover';
      // A session being closed is not worth recovering: close() drops the shell next.
      const recovered = this.closeRequested ? undefined : await this.recover(run);
      this.releaseRun();
      const how =
        recovered === undefined
          ? 'the shell was closed with its session'
          : recovered
            ? 'the shell was interrupted and recovered'
            : 'the shell did not recover and was closed; the next command opens a new one';
      const why = run.timedOut ? `timed out after ${formatDuration(options.timeout)}` : `aborted (${abortReason(signal!)})`;
      // No start marker: the shell never ran the command line labwright typed. No recovery
      // in bash or zsh: the shell may run but call a function where labwright calls `builtin`.
      const unstarted =
        neverStarted && run.timedOut
          ? '; the shell never started the command (its start marker did not come): a program was reading the terminal, or the shell cannot be trusted'
          : '';
      const distrust =
        recovered === false && (this.markers.family === 'bash' || this.markers.family === 'zsh')
          ? ' (a function named `builtin` hides the builtins labwright calls, if the job was not simply unstoppable)'
          : '';
      return this.outcome(run, started, `${why}; ${how}${unstarted}${distrust}`);
    }
    this.releaseRun();
    if (run.exitCode === null) {
      // The shell was gone before the command's start marker came back (a connection that
      // broke while idle, noticed only now): the command never began, so run it on a new shell.
      if (run.phase === 'start' && attempt === 0 && this.state === 'dead') {
        return this.runUnlocked(command, { ...options, timeout: Math.max(1, options.timeout - (Date.now() - started)) }, attempt + 1);
      }
      return this.outcome(run, started, `the shell ended while the command ran (${this.lostReason ?? 'unknown reason'}); the next command opens a new shell`);
    }
    if (this.renormalise) await this.resync();
    return this.outcome(run, started);
  }

  /**
   * Sets the terminal back to labwright's settings after a command changed them, and waits
   * for a marker typed after it: the echo of that line, if echo was on, never reaches expect().
   */
  private async resync(): Promise<void> {
    this.renormalise = false;
    if (!this.transport.pty || this.state !== 'open') return;
    const markers = this.markers.next();
    const nl = this.transport.newline;
    this.handshaking = true;
    try {
      this.write(this.markers.normaliseLine() + nl + this.markers.recoveryLine(markers) + nl);
      if ((await this.waitForMarker(markers.recovery, this.options.recoveryTimeout)) === undefined) {
        this.lostReason = 'it did not answer after its terminal settings were restored';
        this.observer.lifecycle?.('lost', this.lostReason);
        await this.dropChannel();
        this.state = 'dead';
      }
    } finally {
      this.handshaking = false;
    }
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    if (rest.length > 0 && this.state === 'open') this.takeIdle(rest);
  }

  /** Ends the current command; output after its end (a background job, say) becomes idle output. */
  private releaseRun(): void {
    this.current = undefined;
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    if (rest.length > 0 && this.state === 'open') this.takeIdle(rest);
  }

  private flushIdle(): void {
    const rest = this.idleCleaner.flush();
    if (rest) {
      this.idleLines.push(rest);
      this.idleText += rest;
    }
    this.idleLines.flush();
    this.idleText = '';
  }

  private outcome(run: CommandRun, started: number, error?: string): SessionCommandOutcome {
    run.text += run.cleaner.flush();
    run.lines.push('');
    run.lines.flush();
    return {
      output: run.text,
      outputBytes: Buffer.concat(run.chunks),
      exitCode: run.timedOut || run.aborted ? null : run.exitCode,
      timedOut: run.timedOut,
      aborted: run.aborted,
      durationMs: Date.now() - started,
      ...(error ? { error } : {}),
    };
  }

  /** Moves bytes from the buffer into the command's output as markers are found. */
  private processRun(run: CommandRun): void {
    if (run.phase === 'start') {
      // Our own typed line coming back means the terminal echoes again.
      if (this.transport.pty && this.buffer.includes(TYPED_RUN_LINE)) this.renormalise = true;
      const index = this.buffer.indexOf(run.markers.start);
      if (index === -1) {
        const keep = run.markers.start.length;
        if (this.buffer.length > keep * 4) this.buffer = this.buffer.subarray(this.buffer.length - keep);
        return;
      }
      const lineEnd = this.buffer.indexOf(0x0a, index + run.markers.start.length);
      if (lineEnd === -1) return;
      this.buffer = this.buffer.subarray(lineEnd + 1);
      run.phase = 'output';
    }
    if (run.phase !== 'output') return;

    const end = this.buffer.indexOf(run.markers.end);
    if (end === -1) {
      // Hold back only a tail that could be the beginning of "\r\n" + end marker, so that
      // a prompt without a newline ("Password: ") reaches expects at once.
      const safe = this.buffer.length - markerPrefixLength(this.buffer, run.markers.end);
      if (safe > 0) {
        this.emit(run, this.buffer.subarray(0, safe));
        this.buffer = this.buffer.subarray(safe);
      }
      // A held-back line end completes the current line whatever follows it.
      if (this.buffer[0] === 0x0a || (this.buffer[0] === 0x0d && this.buffer[1] === 0x0a)) run.lines.endLineEarly();
      return;
    }
    const codeStart = end + run.markers.end.length;
    const lineEnd = this.buffer.indexOf(0x0a, codeStart);
    if (lineEnd === -1) return;
    const endLine = this.buffer.subarray(codeStart, lineEnd + 1);
    const code = Number.parseInt(endLine.toString('latin1').trim(), 10);
    // Our printf ended the marker line with tab, CR, LF: anything else means the terminal
    // changes bytes again (a command ran `stty sane`, say). CR CR LF: it maps NL to CR NL.
    const crlf = endLine[endLine.length - 3] === 0x0d && endLine[endLine.length - 2] === 0x0d;
    if (!endLine.subarray(-END_LINE_TAIL.length).equals(END_LINE_TAIL)) this.renormalise = true;
    // The end marker was printed after a newline of its own; it is not part of the output.
    // Only a terminal that maps NL to CR NL added a CR to it: an output's own final CR stays.
    let contentEnd = end;
    if (contentEnd > 0 && this.buffer[contentEnd - 1] === 0x0a) {
      contentEnd--;
      if (crlf && contentEnd > 0 && this.buffer[contentEnd - 1] === 0x0d) contentEnd--;
    }
    this.emit(run, this.buffer.subarray(0, contentEnd));
    this.buffer = this.buffer.subarray(lineEnd + 1);
    run.exitCode = Number.isNaN(code) ? null : code;
    run.phase = 'done';
    run.done();
  }

  private emit(run: CommandRun, bytes: Buffer): void {
    const text = run.append(Buffer.from(bytes));
    if (run.expects.length === 0 || !text) return;
    run.expectText += text;
    for (;;) {
      let earliest: { rule: (typeof run.expects)[number]; match: RegExpExecArray } | undefined;
      for (const rule of run.expects) {
        const match = rule.pattern.exec(run.expectText);
        if (match && (!earliest || match.index < earliest.match.index)) earliest = { rule, match };
      }
      if (!earliest) break;
      run.expectText = run.expectText.slice(earliest.match.index + Math.max(1, earliest.match[0].length));
      try {
        this.write(earliest.rule.response + this.transport.newline);
        this.observer.sent?.(earliest.rule.response + '\n', earliest.rule.secret);
      } catch {
        break; // the shell is gone; the run ends through onClosed
      }
    }
    if (run.expectText.length > 64 * 1024) run.expectText = run.expectText.slice(-32 * 1024);
  }

  /** After a timeout: interrupt, type a recovery marker, escalate until the shell answers. */
  private async recover(run: CommandRun): Promise<boolean> {
    const channel = this.channel;
    if (!channel || this.state !== 'open') return false;
    // The interrupted program may have left the terminal in modes that hide the marker.
    const normalise = this.transport.pty ? this.markers.normaliseLine() + this.transport.newline : '';
    const recoveryLine = normalise + this.markers.recoveryLine(run.markers) + this.transport.newline;
    for (let attempt = 0; attempt < MAX_RECOVERY_STEPS; attempt++) {
      let stronger = true;
      try {
        stronger = await channel.interrupt(attempt);
        this.write(recoveryLine);
      } catch {
        break;
      }
      if ((await this.waitForMarker(run.markers.recovery, this.options.recoveryTimeout)) !== undefined) {
        this.observer.lifecycle?.('recovered', `after ${attempt + 1} interrupt(s)`);
        return true;
      }
      if (!stronger || this.state !== 'open') break;
    }
    this.lostReason = 'it did not answer after interrupts';
    this.observer.lifecycle?.('lost', this.lostReason);
    await this.dropChannel();
    this.state = 'dead';
    return false;
  }
}
