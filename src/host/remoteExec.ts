/**
 * Stateless commands on a remote host, and what they report. Two backends run them: SSH
 * exec channels multiplexed by the executor, or a pool of logged-in telnet shells. Both
 * return the same {@link ExecOutcome}; {@link execResult} turns it into a CommandResult,
 * and {@link commandRunner} gives transfer methods the same backend for helper commands.
 */
import { StringDecoder } from 'node:string_decoder';

import type { RemoteHostConfig } from '../config/defineLab.js';
import type { SshExecutor } from '../exec/executor.js';
import type { ChannelExecOutcome } from '../exec/sshExec.js';
import { cleanText, LineSplitter } from '../session/text.js';
import type { RemoteRunner } from '../transfer/types.js';
import { signalTaggedProcesses } from '../util/processTree.js';
import { abortReason, formatDuration } from '../util/time.js';
import { execScript, missingCwdError } from './execScript.js';
import type { ExecOptions } from './host.js';
import { CommandResult, statusOf } from './results.js';

/** What a backend reports for one command: an SSH exec's outcome, or the same shape from a telnet shell. */
export interface ExecOutcome extends Omit<ChannelExecOutcome, 'lost'> {
  /** Why the command did not complete, when the backend knows better than the other fields. */
  error: string | undefined;
}

/** Options a backend receives: `exec()`'s, with the effective timeout and signal. */
export interface BackendOptions extends Omit<ExecOptions, 'timeout' | 'signal'> {
  timeout: number;
  signal?: AbortSignal | undefined;
  /** Each stdout line as it arrives. */
  onLine?: ((line: string) => void) | undefined;
}

/** Runs stateless commands on one host. */
export interface ExecBackend {
  readonly protocol: 'ssh' | 'telnet' | 'console';
  run(command: string, options: BackendOptions): Promise<ExecOutcome>;
  close(): Promise<void>;
}

/** exec over SSH: each command on its own channel; env and cwd go into the command text. */
export function sshExecBackend(config: RemoteHostConfig, executor: SshExecutor): ExecBackend {
  return {
    protocol: 'ssh',
    async run(command, options) {
      // Tagged, so the command's whole process tree can be stopped from another channel (on
      // a server taking exec channels one at a time, from a side connection).
      const prepared = execScript(command, { ...options, tagged: true }, config.name, 'ssh');
      const { ssh } = config;
      const lines = options.onLine ? new LineSplitter(options.onLine) : undefined;
      // A chunk may end inside a multi-byte character.
      const decoder = new StringDecoder('utf8');
      const outcome = await executor.exec(prepared.script, {
        timeout: options.timeout,
        signal: options.signal,
        env: ssh.env,
        stdin: options.stdin,
        pty: options.pty ? { term: ssh.termType, cols: ssh.cols, rows: ssh.rows } : undefined,
        onStdout: lines && ((chunk) => lines.push(decoder.write(chunk))),
        // The command's whole process tree: a shell that forked the command (dash; bash for
        // a list) passes the channel's signal on to nobody. Best effort, bounded, on a
        // channel of its own.
        onStop: (signal) => {
          if (prepared.tag) void executor.exec(signalTaggedProcesses(prepared.tag, signal), { timeout: 5_000 }).catch(() => {});
        },
      });
      lines?.push(decoder.end());
      lines?.flush();
      const { stderr, missingCwd } = prepared.checkCwd(outcome.stderr);
      return {
        stdout: outcome.stdout,
        stderr,
        exitCode: missingCwd ? null : outcome.exitCode,
        signal: outcome.signal,
        timedOut: outcome.timedOut,
        aborted: outcome.aborted,
        durationMs: outcome.durationMs,
        error: missingCwd ? missingCwdError(options.cwd!) : undefined,
      };
    },
    async close() {},
  };
}

/** The CommandResult of one exec; `signal` is the one it ran under (an abort's reason goes into the error). */
export function execResult(
  host: string,
  protocol: ExecBackend['protocol'],
  command: string,
  timeout: number,
  outcome: ExecOutcome,
  signal?: AbortSignal,
): CommandResult {
  const error =
    outcome.error ??
    (outcome.timedOut
      ? `timed out after ${formatDuration(timeout)}; the remote command was interrupted and its channel closed`
      : outcome.aborted
        ? `aborted${signal?.aborted ? ` (${abortReason(signal)})` : ''}; the remote command was interrupted and its channel closed`
        : outcome.signal
          ? `killed by signal ${outcome.signal}`
          : outcome.exitCode === null
            ? 'ended without an exit status'
            : undefined);
  return new CommandResult({
    host,
    session: 'exec',
    protocol,
    command,
    output: cleanText(outcome.stdout.toString('utf8')),
    outputBytes: outcome.stdout,
    exitCode: outcome.exitCode,
    status: error ? 'error' : statusOf(outcome.exitCode),
    durationMs: outcome.durationMs,
    timedOut: outcome.timedOut,
    aborted: outcome.aborted,
    error,
    stderr: cleanText(outcome.stderr.toString('utf8')),
    signal: outcome.signal,
  });
}

/** Helper commands of transfer methods (mkdir, sha256sum, nc) on the same backend as exec. */
export function commandRunner(backend: ExecBackend, signal: () => AbortSignal | undefined): RemoteRunner {
  return {
    run: async (command, { timeout, stdin }) => {
      const outcome = await backend.run(command, { timeout, stdin, signal: signal() });
      return { exitCode: outcome.exitCode, stdout: outcome.stdout.toString('utf8'), stderr: outcome.stderr.toString('utf8') };
    },
  };
}
