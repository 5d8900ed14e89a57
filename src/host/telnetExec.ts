/**
 * Stateless commands on shells that only have a terminal (telnet, a serial console): a
 * shell runs each command in a subshell (so it leaves the shell as it found it),
 * with its stdin, and its stderr kept apart through a temporary file printed after a
 * separator line that only printf assembles.
 */
import { randomBytes } from 'node:crypto';

import { ShellPool, type ShellPoolOptions } from '../session/shellPool.js';
import type { SessionCommandOptions, SessionCommandOutcome } from '../session/shellSession.js';
import { GUARDED_COMMAND } from '../session/wire.js';
import { execScript, missingCwdError } from './execScript.js';
import type { BackendOptions, ExecBackend, ExecOutcome } from './remoteExec.js';

/**
 * The script that runs `command` and prints stdout, a separator line, then stderr. With
 * `mergeStderr` (exec's `pty` option) stderr goes to the output, as on a terminal. Its own
 * words go through the shell's guarded command (a profile may define `cat` or `printf`).
 */
export function telnetExecScript(command: string, options: { stdin?: string | Buffer | undefined; mergeStderr?: boolean | undefined }, token: string): string {
  const own = (word: string) => `${GUARDED_COMMAND} ${word}`;
  // stdin travels as base64 in a variable: binary-safe and free of here-document pitfalls.
  // Without stdin the command reads nothing, unless it asked for the terminal (pty).
  const body =
    options.stdin === undefined
      ? `{\n${command}\n}${options.mergeStderr ? '' : ' </dev/null'}`
      : `__lw_in='${(Buffer.isBuffer(options.stdin) ? options.stdin : Buffer.from(options.stdin)).toString('base64')}'; ${own('printf')} '%s' "$__lw_in" | ${own('base64')} -d | {\n${command}\n}`;
  const separator = `${own('printf')} '\\n%s_%s\\n' LWSE ${token}`;
  if (options.mergeStderr) return `( ${body}\n) 2>&1; __lw_rc=$?; ${separator}; (exit $__lw_rc)`;
  return (
    `__lw_e=/tmp/.lw-stderr-$$-${token}; ( ${body}\n) 2>"$__lw_e"; __lw_rc=$?; ` +
    `${separator}; ${own('cat')} "$__lw_e" 2>/dev/null; ${own('rm')} -f "$__lw_e"; (exit $__lw_rc)`
  );
}

/** A fresh token for one exec. */
export function execToken(): string {
  return randomBytes(6).toString('hex');
}

/** Splits what the script printed into stdout and stderr bytes. */
export function splitTelnetExec(output: Buffer, token: string): { stdout: Buffer; stderr: Buffer } {
  for (const separator of [Buffer.from(`\nLWSE_${token}\n`), Buffer.from(`\r\nLWSE_${token}\r\n`)]) {
    const index = output.lastIndexOf(separator);
    if (index !== -1) return { stdout: output.subarray(0, index), stderr: output.subarray(index + separator.length) };
  }
  return { stdout: output, stderr: Buffer.alloc(0) };
}

/** Shells that run exec scripts: a pool of telnet shells, or a console's one shell. */
export interface ScriptShells {
  run(script: string, options: SessionCommandOptions): Promise<SessionCommandOutcome>;
  close(): Promise<void>;
}

/** A pool of logged-in shells on `transport`, opened as commands need them. */
export function pooledShells(options: ShellPoolOptions): ScriptShells {
  let pool: ShellPool | undefined;
  return {
    run: (script, runOptions) => (pool ??= new ShellPool(options)).run(script, runOptions),
    close: async () => {
      const current = pool;
      pool = undefined;
      await current?.close();
    },
  };
}

/**
 * exec on hosts whose shells have no channels (telnet, a serial console): each command a
 * subshell on one of `shells`, its stderr kept apart.
 */
export class ShellExecBackend implements ExecBackend {
  constructor(
    readonly protocol: 'telnet' | 'console',
    private readonly host: string,
    private readonly shells: ScriptShells,
  ) {}

  async run(command: string, options: BackendOptions): Promise<ExecOutcome> {
    const token = execToken();
    const prepared = execScript(command, { ...options, inLabwrightShell: true }, this.host, this.protocol);
    const separatorLine = `LWSE_${token}`;
    let inStderr = false;
    // Empty lines wait: the separator's own leading newline makes one that is not output.
    let emptyLines = 0;
    const onLine = (line: string) => {
      if (inStderr) return;
      if (line === separatorLine) {
        inStderr = true;
        emptyLines = Math.max(0, emptyLines - 1);
      } else if (line === '') {
        emptyLines++;
        return;
      }
      for (; emptyLines > 0; emptyLines--) options.onLine?.('');
      if (!inStderr) options.onLine?.(line);
    };
    const outcome = await this.shells.run(telnetExecScript(prepared.script, { stdin: options.stdin, mergeStderr: options.pty }, token), {
      timeout: options.timeout,
      signal: options.signal,
      onLine,
    });
    const split = splitTelnetExec(outcome.outputBytes, token);
    const { stderr, missingCwd } = prepared.checkCwd(split.stderr);
    return {
      stdout: split.stdout,
      stderr,
      exitCode: missingCwd ? null : outcome.exitCode,
      signal: undefined,
      timedOut: outcome.timedOut,
      aborted: outcome.aborted,
      durationMs: outcome.durationMs,
      error: missingCwd ? missingCwdError(options.cwd!) : outcome.error,
    };
  }

  close(): Promise<void> {
    return this.shells.close();
  }
}
