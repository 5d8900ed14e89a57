/**
 * Prompt mode: commands on a console that is not a POSIX shell (U-Boot's `=>`, other boot
 * loaders). A command is typed as one line; it ends when the prompt comes back.
 *
 * - Exit status: where the console has one (U-Boot's hush shell has `$?`), the line is
 *   `<command>; echo LWS_<nonce>:$?` (the `status` template), and the command ends at that
 *   marker followed by the prompt: exact, no guessing. Where it has none, the command
 *   ends when the prompt is the last thing printed and the console stays quiet for
 *   `settle` ms, and the outcome says that no status exists (exitCode null).
 * - The console echoes the typed line; that echo is not output.
 * - Expects answer prompts in the output as in shell mode; a timeout types the interrupt
 *   (Ctrl+C), up to three times, until the prompt returns.
 */
import type { PromptOptions } from '../config/schema.js';
import type { ConsoleConnection, ConsoleConsumer } from '../transport/consoleConnection.js';
import { AbortedError, ExpectTimeoutError, messageOf, SessionClosedError } from '../util/errors.js';
import { quoteForMessage, registerSecret } from '../util/secrets.js';
import { abortReason, formatDuration } from '../util/time.js';
import {
  type CommandSession,
  type ExpectMatch,
  notStarted,
  type SessionCommandOptions,
  type SessionCommandOutcome,
  type SessionObserver,
  toRegExp,
} from './shellSession.js';
import { LineSplitter, TextCleaner } from './text.js';
import { randomId } from './wire.js';

/** Options of a {@link PromptSession}. */
export interface PromptSessionOptions {
  /** Lab host name (errors). */
  host: string;
  /** Session name in transcripts (`bootloader`). */
  name: string;
  connection: ConsoleConnection;
  prompt: PromptOptions;
  /** What ends a typed line. */
  newline: string;
  /** How long each interrupt waits for the prompt (ms). */
  recoveryTimeout: number;
  observer?: SessionObserver;
}

/** Interrupts tried after a timeout before the console is declared unresponsive. */
const MAX_INTERRUPTS = 3;
/** Text kept for expect() between matches. */
const TEXT_LIMIT = 1024 * 1024;

/** A boot loader's command prompt on a console. */
export class PromptSession implements ConsoleConsumer, CommandSession {
  readonly protocol = 'console' as const;
  readonly name: string;
  private readonly options: PromptSessionOptions;
  private readonly prompt: RegExp;
  private cleaner = new TextCleaner();
  /** Cleaned text since the current command was typed (or since the last expect match). */
  private text = '';
  private lostError: Error | undefined;

  constructor(options: PromptSessionOptions) {
    this.options = options;
    this.name = options.name;
    const source = options.prompt.pattern;
    // The prompt must be the end of what was printed.
    this.prompt = new RegExp(source.source.endsWith('$') ? source.source : `${source.source}$`, source.flags.replace(/[gym]/g, ''));
  }

  /** Prompt mode needs no setup: it is usable whenever the console is. */
  get alive(): boolean {
    return true;
  }

  private get connection(): ConsoleConnection {
    return this.options.connection;
  }

  private get where() {
    return { host: this.options.host, protocol: 'console' as const };
  }

  // ---- ConsoleConsumer ----

  data(bytes: Buffer): void {
    this.text += this.cleaner.push(bytes);
    if (this.text.length > TEXT_LIMIT) this.text = this.text.slice(-TEXT_LIMIT / 2);
  }

  closed(error: Error): void {
    this.lostError = error;
  }

  /** Takes the console's stream for prompt mode (inside the caller's exclusive section). */
  private async take(): Promise<void> {
    await this.connection.ensure();
    if (!this.connection.isCurrent(this)) {
      this.cleaner = new TextCleaner();
      this.text = '';
    }
    this.lostError = undefined;
    this.connection.use(this, `prompt mode (${this.name})`);
  }

  /** Whether the prompt is the last thing printed. */
  private atPrompt(): boolean {
    return this.prompt.test(this.text);
  }

  /**
   * Waits until the console shows its prompt: types a newline first (a quiet boot loader
   * shows it again). Resolves with what came before it.
   */
  awaitPrompt(timeout: number): Promise<string> {
    return this.connection.exclusive(`waiting for the prompt (${this.name})`, async () => {
      await this.take();
      this.text = '';
      this.connection.writeNow(this.options.newline);
      const found = await this.waitUntil(() => this.atPrompt(), timeout);
      if (!found) {
        throw new ExpectTimeoutError(
          `no ${String(this.options.prompt.pattern)} prompt within ${formatDuration(timeout)}; last output: ${quoteForMessage(this.text, 300)}`,
          this.text,
          { ...this.where, hint: 'Check console.prompt.pattern against the output, and that the board is in its boot loader (interrupt autoboot first).' },
        );
      }
      const before = this.text;
      this.text = '';
      return before;
    });
  }

  /** Runs one command at the prompt. Never throws for the command's own failures. */
  run(command: string, options: SessionCommandOptions): Promise<SessionCommandOutcome> {
    return this.connection.exclusive(`prompt command ${quoteForMessage(command, 60, 'start')} (${this.name})`, () => this.runUnlocked(command, options));
  }

  private async runUnlocked(command: string, options: SessionCommandOptions): Promise<SessionCommandOutcome> {
    if (/[\r\n]/.test(command)) throw new SessionClosedError('a prompt-mode command is one line; send several commands one by one.', this.where);
    const { signal } = options;
    if (signal?.aborted) return notStarted(`aborted (${abortReason(signal)})`);
    const started = Date.now();
    await this.take();
    const status = this.options.prompt.status;
    const nonce = `LWS_${randomId(8)}:`;
    const line = status === false ? command : `${command}; ${status.includes('%s') ? status.replace('%s', nonce) : status.replace('$?', `${nonce}$?`)}`;
    const statusLine = new RegExp(`(^|\\n)${nonce}(\\d+)\\n`);
    const expects = (options.expects ?? []).map((rule) => {
      if (rule.secret) registerSecret(rule.response);
      return { pattern: toRegExp(rule.pattern), response: rule.response, secret: rule.secret ?? false };
    });
    let expectFrom = 0;
    const lines = new LineSplitter((text) => options.onLine?.(text));
    let reported = 0;

    this.text = '';
    this.connection.writeNow(line + this.options.newline);

    /** Output so far: after the echo of the typed line (when the console echoes). */
    const output = () => {
      const echoEnd = this.text.indexOf('\n');
      const first = echoEnd === -1 ? this.text : this.text.slice(0, echoEnd);
      const echoed = first.trimEnd().endsWith(line.trimEnd()) || (echoEnd === -1 && line.startsWith(first.trim()));
      return echoed ? (echoEnd === -1 ? '' : this.text.slice(echoEnd + 1)) : this.text;
    };
    let code: number | null = null;
    let body = '';
    const finished = (): boolean => {
      const out = output();
      // Live lines and expects see the output as it comes, the prompt and status excluded.
      const shown = status === false ? out.replace(this.prompt, '') : out.split(nonce)[0]!.replace(/\n?$/, '');
      const complete = shown.slice(0, shown.lastIndexOf('\n') + 1);
      if (complete.length > reported) {
        lines.push(complete.slice(reported));
        reported = complete.length;
      }
      if (expects.length > 0) {
        for (;;) {
          const pending = shown.slice(expectFrom);
          let earliest: { rule: (typeof expects)[number]; match: RegExpExecArray } | undefined;
          for (const rule of expects) {
            const match = rule.pattern.exec(pending);
            if (match && (!earliest || match.index < earliest.match.index)) earliest = { rule, match };
          }
          if (!earliest) break;
          expectFrom += earliest.match.index + Math.max(1, earliest.match[0].length);
          this.connection.writeNow(earliest.rule.response + this.options.newline);
          this.options.observer?.sent?.(earliest.rule.response + '\n', earliest.rule.secret);
        }
      }
      if (status === false) {
        if (!this.prompt.test(out)) return false;
        body = out.replace(this.prompt, '');
        return true;
      }
      const match = statusLine.exec(out);
      if (!match || !this.prompt.test(out.slice(match.index + match[0].length))) return false;
      body = out.slice(0, match.index + match[1]!.length);
      code = Number(match[2]);
      return true;
    };

    const done = await this.waitUntil(finished, options.timeout, status === false ? this.options.prompt.settle : 0, signal);
    const aborted = !done && signal?.aborted === true;
    const outcome = (error: string | undefined, timedOut: boolean): SessionCommandOutcome => {
      const text = done ? body : output();
      lines.push(text.slice(reported));
      lines.flush();
      return {
        output: text,
        outputBytes: Buffer.from(text, 'utf8'),
        exitCode: timedOut || aborted ? null : code,
        ...(done && status === false ? { statusUnknown: true } : {}),
        timedOut,
        aborted,
        durationMs: Date.now() - started,
        ...(error ? { error } : {}),
      };
    };
    if (done) {
      this.text = '';
      return outcome(status === false ? 'this console reports no exit status (prompt.status is false); check the output' : undefined, false);
    }
    if (this.lostError) return outcome(`the console connection was lost while the command ran (${messageOf(this.lostError)})`, false);

    // Timed out or aborted: interrupt until the prompt comes back.
    const partial = outcome(undefined, !aborted);
    const recovered = await this.recover();
    const why = aborted ? `aborted (${abortReason(signal!)})` : `timed out after ${formatDuration(options.timeout)}`;
    return {
      ...partial,
      durationMs: Date.now() - started,
      error: `${why}; ${recovered ? `the command was interrupted (${JSON.stringify(this.options.prompt.interrupt)}) and the prompt came back` : 'the prompt did not come back after interrupts: the console may be hung (power-cycle the board)'}`,
    };
  }

  private async recover(): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_INTERRUPTS; attempt++) {
      this.text = '';
      try {
        this.connection.writeNow(this.options.prompt.interrupt);
      } catch {
        return false;
      }
      // The prompt, and then quiet: a status echo may still follow an interrupted command.
      if (await this.waitUntil(() => this.atPrompt(), this.options.recoveryTimeout, Math.max(this.options.prompt.settle, 100))) {
        this.options.observer?.lifecycle?.('recovered', `after ${attempt + 1} interrupt(s)`);
        this.text = '';
        return true;
      }
    }
    this.options.observer?.lifecycle?.('lost', 'the prompt did not come back after interrupts');
    return false;
  }

  /** Types raw text (include the line end yourself). */
  send(text: string, options: { secret?: boolean; signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (options.secret) registerSecret(text.replace(/\r?\n$/, ''));
    return this.connection.exclusive(`send (${this.name})`, async () => {
      await this.take();
      this.connection.writeNow(text);
      this.options.observer?.sent?.(text, options.secret ?? false);
    });
  }

  /** Waits for `pattern` in the output since the last command or match, and consumes up to it. */
  expect(pattern: RegExp | string, options: { timeout: number; signal?: AbortSignal | undefined }): Promise<ExpectMatch> {
    return this.connection.exclusive(`expect ${String(pattern)} (${this.name})`, async () => {
      await this.take();
      const regex = toRegExp(pattern);
      let found: RegExpExecArray | null = null;
      await this.waitUntil(() => (found = regex.exec(this.text)) !== null, options.timeout, 0, options.signal);
      const match = found as RegExpExecArray | null;
      if (!match && options.signal?.aborted) {
        throw new AbortedError(`expect ${String(regex)} on ${this.name} was aborted: ${abortReason(options.signal)}.`, this.where);
      }
      if (!match) {
        throw new ExpectTimeoutError(
          `expect on ${this.name}: ${String(regex)} not seen within ${formatDuration(options.timeout)}; last output: ${quoteForMessage(this.text, 300)}`,
          this.text,
          {
            ...this.where,
            hint: 'Check the pattern against the output above, or raise the timeout.',
          },
        );
      }
      const end = match.index + match[0].length;
      const result = { match, before: this.text.slice(0, match.index), text: this.text.slice(0, end) };
      this.text = this.text.slice(end);
      return result;
    });
  }

  /**
   * Waits until `test()` holds (and, with `settle`, keeps holding through `settle` ms of
   * quiet), the connection is lost, or `timeout` passes. Returns whether it holds.
   */
  private async waitUntil(test: () => boolean, timeout: number, settle = 0, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (test()) {
        if (settle === 0) return true;
        const before = this.text.length;
        await this.connection.nextEvent(settle, signal);
        if (this.text.length === before && test()) return true;
        continue;
      }
      if (this.lostError || signal?.aborted) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.connection.nextEvent(left, signal);
    }
  }
}
