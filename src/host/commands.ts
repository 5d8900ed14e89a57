/** Running command lists on a shell session: timeout budget, expects, steps and events. */
import type { CommandSession, ExpectRule } from '../session/shellSession.js';
import { messageOf } from '../util/errors.js';
import { redact } from '../util/secrets.js';
import { abortReason, anySignal, formatDuration } from '../util/time.js';
import type { HostContext } from './events.js';
import { type CommandOrigin, CommandResult, RunResult, statusOf } from './results.js';

/** A response typed when an expect pattern appears; `secret()` masks it everywhere. */
export interface SecretText {
  readonly secret: true;
  readonly value: string;
}

/** Marks a response (a password, say) as secret: it is masked in transcripts, steps and errors. */
export function secret(value: string): SecretText {
  return { secret: true, value };
}

/**
 * An expect/response pair for interactive prompts: `[pattern, response]` or an
 * object. The response is typed, with a newline, every time the pattern appears.
 */
export type ExpectInput =
  readonly [pattern: RegExp | string, response: string | SecretText] | { pattern: RegExp | string; response: string | SecretText; secret?: boolean };

/** A command with its own options. */
export interface CommandSpec {
  cmd: string;
  /** Timeout (ms) of this command. */
  timeout?: number;
  /** Expects for this command, added to the run's. */
  expects?: readonly ExpectInput[];
}

export type CommandInput = string | CommandSpec;

/** Options of `run()`. */
export interface RunOptions {
  /**
   * Time budget (ms) shared by the commands of this call. Each command gets what is
   * left; commands that find the budget spent are reported as `skipped`. Default: the sum
   * of each command's own timeout (the host's command timeout unless a command sets one).
   */
  timeout?: number;
  /** Expects applied to every command of this call. */
  expects?: readonly ExpectInput[];
  /** Skip the remaining commands once one fails. Default false: like a script, keep going. */
  stopOnFailure?: boolean;
  /**
   * Ends the running command early (interrupted, the shell recovered) and skips the rest;
   * the test's own signal always applies.
   */
  signal?: AbortSignal;
}

/** Normalises `[pattern, response]` and object forms into session expect rules. */
export function toExpectRules(inputs: readonly ExpectInput[] | undefined): ExpectRule[] {
  return (inputs ?? []).map((input) => {
    const [pattern, response, secretFlag] = Array.isArray(input)
      ? [input[0], input[1], false]
      : [
          (input as { pattern: RegExp | string }).pattern,
          (input as { response: string | SecretText }).response,
          (input as { secret?: boolean }).secret ?? false,
        ];
    if (typeof response === 'string') return { pattern, response, secret: secretFlag };
    return { pattern, response: response.value, secret: true };
  });
}

function normalise(commands: CommandInput | readonly CommandInput[]): CommandSpec[] {
  const list = typeof commands === 'string' || !Array.isArray(commands) ? [commands as CommandInput] : (commands as readonly CommandInput[]);
  return list.map((command) => (typeof command === 'string' ? { cmd: command } : command));
}

/** Title of a command's step: host, session when not the default, and the command (redacted, shortened). */
export function stepTitle(host: string, session: string, command: string): string {
  const oneLine = redact(command).replace(/\s*\n\s*/g, ' ⏎ ');
  const shown = oneLine.length > 100 ? `${oneLine.slice(0, 97)}...` : oneLine;
  return `${host}${session === 'default' ? '' : `/${session}`}: ${shown}`;
}

/** Where commands run: a session plus what the results and events need to say. */
export interface CommandTarget {
  host: string;
  session: string;
  shell: CommandSession;
  context: HostContext;
  /** Host-level default timeout (ms). */
  commandTimeout: number;
}

/** Runs commands one after the other on a shell session. */
export async function runCommands(target: CommandTarget, commands: CommandInput | readonly CommandInput[], options: RunOptions = {}): Promise<RunResult> {
  const specs = normalise(commands);
  // The call's timeout comes first: without one of their own, commands get the rest of it
  // (never the host's shorter default).
  const budget = options.timeout ?? specs.reduce((sum, spec) => sum + (spec.timeout ?? target.commandTimeout), 0);
  const signal = anySignal(options.signal, target.context.signal());
  const started = Date.now();
  const results: CommandResult[] = [];
  let stopReason: string | undefined;

  for (const spec of specs) {
    const spent = Date.now() - started;
    const left = budget - spent;
    if (!stopReason && left <= 0) {
      stopReason = `not run: the run's ${formatDuration(budget)} timeout budget was spent by the commands before it`;
    }
    if (!stopReason && signal?.aborted) stopReason = `not run: aborted (${abortReason(signal)})`;
    if (stopReason) {
      results.push(skipped(target, spec.cmd, stopReason));
      emitSkipped(target, results[results.length - 1]!);
      continue;
    }
    const timeout = Math.min(spec.timeout ?? (options.timeout !== undefined ? left : target.commandTimeout), left);
    target.context.checkTimeout(target.host, timeout);
    const result = await runOne(target, spec, timeout, [...(options.expects ?? []), ...(spec.expects ?? [])], signal);
    results.push(result);
    if (options.stopOnFailure && result.status !== 'success') {
      stopReason = `not run: "${redact(spec.cmd).slice(0, 60)}" before it did not succeed (stopOnFailure)`;
    }
  }
  return new RunResult(results);
}

function skipped(target: CommandTarget, command: string, reason: string): CommandResult {
  return new CommandResult({
    host: target.host,
    session: target.session,
    protocol: target.shell.protocol,
    command,
    output: '',
    exitCode: null,
    status: 'skipped',
    durationMs: 0,
    timedOut: false,
    error: reason,
  });
}

function emitSkipped(target: CommandTarget, result: CommandResult): void {
  const { events } = target.context;
  const id = events.commandId();
  const base = { host: target.host, session: target.session, id };
  events.emit({ ...base, type: 'command-start', time: Date.now(), protocol: target.shell.protocol, command: redact(result.command) });
  events.emit({ ...base, type: 'command-end', time: Date.now(), result });
}

async function runOne(
  target: CommandTarget,
  spec: CommandSpec,
  timeout: number,
  expects: readonly ExpectInput[],
  signal: AbortSignal | undefined,
): Promise<CommandResult> {
  const where = { host: target.host, session: target.session, protocol: target.shell.protocol };
  return reportCommand(target.context, where, spec.cmd, async (onLine) => {
    const outcome = await target.shell.run(spec.cmd, { timeout, expects: toExpectRules(expects), onLine, signal });
    return new CommandResult({
      ...where,
      command: spec.cmd,
      output: outcome.output,
      outputBytes: outcome.outputBytes,
      exitCode: outcome.exitCode,
      status: outcome.statusUnknown ? 'unknown' : outcome.error ? 'error' : statusOf(outcome.exitCode),
      durationMs: outcome.durationMs,
      timedOut: outcome.timedOut,
      aborted: outcome.aborted,
      error: outcome.error,
    });
  });
}

/** Where a reported command runs. */
export interface CommandPlace {
  host: string;
  session: string;
  protocol: CommandOrigin;
}

/**
 * Runs `body` as a step with start, output and end events. If `body` throws (the host
 * cannot be reached, say) an error result is reported and the error is rethrown.
 */
export async function reportCommand(
  context: HostContext,
  where: CommandPlace,
  command: string,
  body: (onLine: (line: string) => void) => Promise<CommandResult>,
): Promise<CommandResult> {
  const { events } = context;
  return context.step(stepTitle(where.host, where.session, command), async () => {
    const id = events.commandId();
    const base = { host: where.host, session: where.session, id };
    const started = Date.now();
    events.emit({ ...base, type: 'command-start', time: started, protocol: where.protocol, command: redact(command) });
    let result: CommandResult;
    try {
      result = await body((line) => events.emit({ ...base, type: 'command-output', time: Date.now(), line: redact(line) }));
    } catch (error) {
      const failed = new CommandResult({
        ...where,
        command,
        output: '',
        exitCode: null,
        status: 'error',
        durationMs: Date.now() - started,
        timedOut: false,
        error: messageOf(error),
      });
      events.emit({ ...base, type: 'command-end', time: Date.now(), result: failed });
      throw error;
    }
    events.emit({ ...base, type: 'command-end', time: Date.now(), result });
    return result;
  });
}
