/**
 * exec on the runner: `/bin/sh -c command` in its own process group, stdout and stderr
 * apart, bounded by the timeout and the signal (TERM to the group, then KILL). A missing
 * working directory is an error result, as on remote hosts; `pty` runs the command on a
 * pseudo-terminal through util-linux's `script`, so programs see a terminal.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

import { cleanText, LineSplitter } from '../session/text.js';
import { abortReason, formatDuration } from '../util/time.js';
import { missingCwdError } from './execScript.js';
import type { ExecRequest } from './host.js';
import { CommandResult, statusOf } from './results.js';

/** Grace between TERM and KILL of a command that was stopped. */
const KILL_GRACE_MS = 2_000;

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then(
    (info) => info.isDirectory(),
    () => false,
  );
}

/** Runs one command on the runner and reports it. */
export async function runLocalProcess(host: string, command: string, request: ExecRequest): Promise<CommandResult> {
  const where = { host, session: 'exec', protocol: 'local' as const, command };
  const started = Date.now();
  const notRun = (error: string, aborted = false) =>
    new CommandResult({ ...where, output: '', exitCode: null, status: 'error', durationMs: Date.now() - started, timedOut: false, aborted, error });
  if (request.cwd !== undefined && !(await isDirectory(request.cwd))) return notRun(missingCwdError(request.cwd));
  if (request.signal?.aborted) return notRun(`not started: aborted (${abortReason(request.signal)})`, true);

  return new Promise((resolve) => {
    // `script -q -e -c CMD /dev/null`: a pty for the command, its exit code passed on.
    const [program, args] = request.pty ? ['script', ['-q', '-e', '-c', command, '/dev/null']] : ['/bin/sh', ['-c', command]];
    const child = spawn(program, args, {
      detached: true,
      cwd: request.cwd,
      env: { ...process.env, ...request.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const lines = new LineSplitter(request.onLine);
    const decoder = new StringDecoder('utf8');
    let stoppedBy: 'timeout' | 'abort' | undefined;
    let spawnError: Error | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      lines.push(decoder.write(chunk));
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => {});
    child.on('error', (error) => (spawnError = error));
    if (request.stdin !== undefined) child.stdin.end(request.stdin);
    else child.stdin.end();

    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    const stop = (why: 'timeout' | 'abort') => {
      if (stoppedBy) return;
      stoppedBy = why;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => stop('timeout'), request.timeout);
    const onAbort = () => stop('abort');
    request.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('close', (code, signal) => {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      lines.push(decoder.end());
      lines.flush();
      const out = Buffer.concat(stdout);
      const exitCode = stoppedBy ? null : code;
      const error = spawnError
        ? `could not start: ${spawnError.message}`
        : stoppedBy === 'timeout'
          ? `timed out after ${formatDuration(request.timeout)}; the command was terminated`
          : stoppedBy === 'abort'
            ? `aborted (${abortReason(request.signal!)}); the command was terminated`
            : signal
              ? `killed by ${signal}`
              : undefined;
      resolve(
        new CommandResult({
          ...where,
          output: cleanText(out.toString('utf8')),
          outputBytes: out,
          exitCode,
          status: error ? 'error' : statusOf(exitCode),
          durationMs: Date.now() - started,
          timedOut: stoppedBy === 'timeout',
          aborted: stoppedBy === 'abort',
          error,
          stderr: cleanText(Buffer.concat(stderr).toString('utf8')),
          signal: signal ? signal.replace(/^SIG/, '') : undefined,
        }),
      );
    });
  });
}
