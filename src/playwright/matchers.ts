/** `expect` matchers for command results: toSucceed, toHaveExitCode, toHaveOutput. */
import { CommandResult, RunResult } from '../host/results.js';
import { quoteForMessage, redact } from '../util/secrets.js';
import { wrapLine } from './reportLayout.js';

type Received = CommandResult | RunResult;

export interface MatcherState {
  isNot: boolean;
}

export interface MatcherResult {
  pass: boolean;
  message: () => string;
  name: string;
  expected?: unknown;
  actual?: unknown;
}

function assertResult(received: unknown, matcher: string): asserts received is Received {
  if (!(received instanceof CommandResult) && !(received instanceof RunResult)) {
    throw new Error(`${matcher}() expects the result of host.run(), session.run() or host.exec(); got ${typeof received}`);
  }
}

function tail(text: string, lines = 15): string {
  const all = redact(text).replace(/\n$/, '').split('\n');
  const shown = all.slice(-lines).map((line) => `    │ ${line}`);
  return (all.length > lines ? [`    │ ... ${all.length - lines} earlier line(s)`, ...shown] : shown).join('\n');
}

function describe(result: CommandResult): string {
  const parts = [`  ${result.host}${result.session === 'default' ? '' : `/${result.session}`} $ ${redact(result.command)}`];
  parts.push(`    status: ${result.status}, exit code: ${result.exitCode ?? 'none'}${result.timedOut ? ', timed out' : ''}`);
  if (result.error) parts.push(wrapLine(`    ${redact(result.error)}`));
  if (result.output) parts.push(tail(result.output));
  if (result.stderr) parts.push(`    stderr:\n${tail(result.stderr)}`);
  return parts.join('\n');
}

function resultsOf(received: Received): readonly CommandResult[] {
  return received instanceof RunResult ? received.results : [received];
}

export const labwrightMatchers = {
  /** Passes when every command ran and exited 0. */
  toSucceed(this: MatcherState, received: unknown): MatcherResult {
    assertResult(received, 'toSucceed');
    const pass = received.ok;
    const failing = resultsOf(received).filter((result) => !result.ok);
    return {
      name: 'toSucceed',
      pass,
      message: () =>
        pass
          ? `expected a failure, but every command succeeded:\n${resultsOf(received).map(describe).join('\n')}`
          : `expected every command to succeed; ${failing.length} did not:\n${failing.map(describe).join('\n')}`,
    };
  },

  /** Passes when the (last) command exited with `code`. */
  toHaveExitCode(this: MatcherState, received: unknown, code: number): MatcherResult {
    assertResult(received, 'toHaveExitCode');
    const result = received instanceof RunResult ? received.last : received;
    const pass = result.exitCode === code;
    return {
      name: 'toHaveExitCode',
      pass,
      expected: code,
      actual: result.exitCode,
      message: () => `expected exit code ${this.isNot ? 'not ' : ''}${code}, got ${result.exitCode ?? 'none'}:\n${describe(result)}`,
    };
  },

  /** Passes when the output (of all commands, for a run) matches `pattern` (a substring or RegExp). */
  toHaveOutput(this: MatcherState, received: unknown, pattern: string | RegExp): MatcherResult {
    assertResult(received, 'toHaveOutput');
    const output = received.output;
    const pass = typeof pattern === 'string' ? output.includes(pattern) : pattern.test(output);
    return {
      name: 'toHaveOutput',
      pass,
      expected: pattern,
      message: () =>
        `expected output ${this.isNot ? 'not ' : ''}to ${typeof pattern === 'string' ? 'contain' : 'match'} ${typeof pattern === 'string' ? quoteForMessage(pattern, 200, 'start') : redact(String(pattern))}:\n${resultsOf(received).map(describe).join('\n')}`,
    };
  },
};
