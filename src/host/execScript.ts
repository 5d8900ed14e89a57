/**
 * The text of a stateless command on a remote POSIX shell, with the options `exec()`
 * documents applied in the command itself rather than through the protocol, so they work
 * the same on every server: environment variables as `export` lines (an SSH server drops
 * `env` requests its AcceptEnv does not list), and the working directory as a `cd` whose
 * failure is told apart from the command's own exit code by a marker on stderr.
 */
import { randomBytes } from 'node:crypto';

import { GUARDED_COMMAND } from '../session/wire.js';
import { LabwrightError } from '../util/errors.js';
import { shellQuote } from '../util/shellQuote.js';

/** Options applied inside the command text. */
export interface ExecScriptOptions {
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  /**
   * The script runs in a labwright shell (telnet, console): its own words (`export`, `cd`,
   * `printf`) go through the shell's guarded command, past functions and aliases a
   * profile may define with those names.
   */
  inLabwrightShell?: boolean | undefined;
  /**
   * Tags the script with a comment line carrying a random word: the shell running it has
   * the word in its command line, so the command's process tree can be found from another
   * channel and signalled (see {@link ExecScript.tag}). A comment is not a command: a
   * shell that runs a single command by exec'ing it still does.
   */
  tagged?: boolean | undefined;
}

/** A command prepared for a remote shell, and how to read what it printed. */
export interface ExecScript {
  /** The text to run. */
  script: string;
  /**
   * Removes labwright's markers from stderr and says whether the working directory was
   * missing (then the command did not run).
   */
  checkCwd(stderr: Buffer): { stderr: Buffer; missingCwd: boolean };
  /** The word the script's shell carries in its command line, when `tagged`. */
  readonly tag: string | undefined;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Builds the script; throws a clear error for an environment name no shell accepts. */
export function execScript(command: string, options: ExecScriptOptions, host: string, protocol: 'ssh' | 'telnet' | 'console'): ExecScript {
  const lines: string[] = [];
  const own = (word: string) => (options.inLabwrightShell ? `${GUARDED_COMMAND} ${word}` : word);
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw new LabwrightError(`exec: ${JSON.stringify(name)} is not a valid environment variable name.`, {
        host,
        protocol,
        hint: 'Use letters, digits and "_", not starting with a digit.',
      });
    }
    lines.push(`${own('export')} ${name}=${shellQuote(value)}`);
  }
  const token = randomBytes(6).toString('hex');
  const marker = Buffer.from(`LWNOCWD_${token}\n`);
  const tag = options.tagged ? `LWX_${token}` : undefined;
  if (tag) lines.push(`# ${tag}`);
  if (options.cwd !== undefined) {
    // printf assembles the marker: a shell echoing its input can never print it by accident.
    lines.push(`${own('cd')} -- ${shellQuote(options.cwd)} 2>/dev/null || { ${own('printf')} '%s_%s\\n' LWNOCWD ${token} >&2; exit 1; }`);
  }
  lines.push(command);
  return {
    script: lines.join('\n'),
    tag,
    checkCwd(stderr) {
      const index = stderr.indexOf(marker);
      if (index === -1) return { stderr, missingCwd: false };
      return { stderr: Buffer.concat([stderr.subarray(0, index), stderr.subarray(index + marker.length)]), missingCwd: true };
    },
  };
}

/** The error text of a command whose working directory could not be entered. */
export function missingCwdError(cwd: string): string {
  return `not started: the working directory ${JSON.stringify(cwd)} does not exist or cannot be entered`;
}
