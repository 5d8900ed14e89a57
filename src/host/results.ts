/** Results of commands: one per command, and one aggregating a list. */
import { redact } from '../util/secrets.js';

/**
 * - `success`: ran and exited 0
 * - `failed`: ran and exited non-zero
 * - `error`: did not complete (timed out, shell or connection lost, could not start)
 * - `skipped`: not run (the run's timeout budget was spent, or an earlier command failed with `stopOnFailure`)
 * - `unknown`: ran to its end on a console that reports no exit status (prompt mode
 *   without a status command); `exitCode` is null and `error` says why. Never counted as success.
 */
export type CommandStatus = 'success' | 'failed' | 'error' | 'skipped' | 'unknown';

/** Where a command ran. */
export type CommandOrigin = 'ssh' | 'telnet' | 'local' | 'console';

/** Fields of a {@link CommandResult}. */
export interface CommandResultInit {
  host: string;
  /** Shell session name (`default`, a named session) or `exec` for stateless commands. */
  session: string;
  protocol: CommandOrigin;
  command: string;
  output: string;
  outputBytes?: Buffer;
  exitCode: number | null;
  status: CommandStatus;
  durationMs: number;
  timedOut: boolean;
  aborted?: boolean | undefined;
  error?: string | undefined;
  stderr?: string | undefined;
  signal?: string | undefined;
}

/** The result of one command. */
export class CommandResult {
  /** Host the command ran on. */
  readonly host: string;
  /** `default`, a named session, or `exec`. */
  readonly session: string;
  readonly protocol: CommandOrigin;
  /** The command as given. */
  readonly command: string;
  /** Output text (for shells stdout and stderr as the terminal showed them; for `exec` stdout only). ANSI escapes removed, CRLF as LF. */
  readonly output: string;
  /** Output bytes exactly as received. */
  readonly outputBytes: Buffer;
  /** Exit code, or null when the command did not finish (see `status`, `error`). */
  readonly exitCode: number | null;
  readonly status: CommandStatus;
  readonly durationMs: number;
  /** Whether the command was stopped by its timeout. */
  readonly timedOut: boolean;
  /** Whether an AbortSignal (the test ending, the caller's) stopped the command or kept it from starting. */
  readonly aborted: boolean;
  /** Why the command did not complete or was skipped. */
  readonly error: string | undefined;
  /** `exec` only: standard error, kept apart from `output`. */
  readonly stderr: string | undefined;
  /** `exec` only: the signal that ended the command (`TERM`, `KILL`, ...). */
  readonly signal: string | undefined;

  constructor(init: CommandResultInit) {
    this.host = init.host;
    this.session = init.session;
    this.protocol = init.protocol;
    this.command = init.command;
    this.output = init.output;
    this.outputBytes = init.outputBytes ?? Buffer.from(init.output);
    this.exitCode = init.exitCode;
    this.status = init.status;
    this.durationMs = init.durationMs;
    this.timedOut = init.timedOut;
    this.aborted = init.aborted ?? false;
    this.error = init.error;
    this.stderr = init.stderr;
    this.signal = init.signal;
  }

  /**
   * A copy with every registered secret masked in its text (command, output, stderr,
   * error); what lab events carry. The original keeps the exact output for the caller.
   */
  masked(): CommandResult {
    const output = redact(this.output);
    return new CommandResult({
      ...this,
      command: redact(this.command),
      output,
      outputBytes: output === this.output ? this.outputBytes : Buffer.from(output),
      error: this.error === undefined ? undefined : redact(this.error),
      stderr: this.stderr === undefined ? undefined : redact(this.stderr),
    });
  }

  /** Whether the command exited 0. */
  get ok(): boolean {
    return this.status === 'success';
  }

  /** One-line description: `dut1: make -j8 → exit 2 (1.20 s)`. */
  toString(): string {
    const outcome =
      this.status === 'skipped'
        ? 'skipped'
        : this.exitCode !== null
          ? `exit ${this.exitCode}`
          : this.timedOut
            ? 'timed out'
            : this.aborted
              ? 'aborted'
              : 'error';
    return `${this.host}: ${this.command} → ${outcome}${this.error ? ` (${this.error})` : ''}`;
  }
}

/** Status from an exit code. */
export function statusOf(exitCode: number | null): CommandStatus {
  if (exitCode === null) return 'error';
  return exitCode === 0 ? 'success' : 'failed';
}

const SEVERITY: Record<CommandStatus, number> = { success: 0, skipped: 1, unknown: 2, failed: 3, error: 4 };

/** The results of a list of commands run one after the other. Iterable over the results. */
export class RunResult implements Iterable<CommandResult> {
  readonly results: readonly CommandResult[];

  constructor(results: readonly CommandResult[]) {
    this.results = results;
  }

  /** The worst status among the commands: error, then failed, then unknown, then skipped, else success. */
  get status(): CommandStatus {
    let worst: CommandStatus = 'success';
    for (const result of this.results) if (SEVERITY[result.status] > SEVERITY[worst]) worst = result.status;
    return worst;
  }

  /** Whether every command ran and exited 0. */
  get ok(): boolean {
    return this.results.length > 0 && this.status === 'success';
  }

  /** The single result of a one-command run. Throws if the run had several commands. */
  get only(): CommandResult {
    if (this.results.length !== 1) {
      throw new Error(`RunResult.only: the run has ${this.results.length} commands; use .last or .results[i]`);
    }
    return this.results[0]!;
  }

  /** The last command's result. */
  get last(): CommandResult {
    const last = this.results[this.results.length - 1];
    if (!last) throw new Error('RunResult.last: the run has no commands');
    return last;
  }

  /** The first command that did not succeed, if any. */
  get firstFailure(): CommandResult | undefined {
    return this.results.find((result) => result.status !== 'success');
  }

  /** Output of every command that ran, in order, each ending with a newline. */
  get output(): string {
    return this.results
      .filter((result) => result.status !== 'skipped')
      .map((result) => (result.output === '' || result.output.endsWith('\n') ? result.output : `${result.output}\n`))
      .join('');
  }

  /** Exit code of the last command. */
  get exitCode(): number | null {
    return this.last.exitCode;
  }

  get length(): number {
    return this.results.length;
  }

  [Symbol.iterator](): Iterator<CommandResult> {
    return this.results[Symbol.iterator]();
  }
}
