/**
 * Stateless commands on shells that only have a terminal (telnet): the command runs in a
 * subshell (so it leaves the pooled shell as it found it), with its environment and stdin,
 * and its stderr is kept apart through a temporary file printed after a marker.
 */
import { randomBytes } from 'node:crypto';
import { shellQuote } from '../transfer/verify.js';

/** The script that runs `command` and prints stdout, a separator line, then stderr. */
export function telnetExecScript(command: string, options: { env?: Record<string, string> | undefined; stdin?: string | Buffer | undefined }, token: string): string {
  const exports = Object.entries(options.env ?? {})
    .map(([name, value]) => `export ${name}=${shellQuote(value)}; `)
    .join('');
  // stdin travels as base64 in a variable: binary-safe and free of here-document pitfalls.
  const body =
    options.stdin === undefined
      ? `{\n${command}\n} </dev/null`
      : `__lw_in='${(Buffer.isBuffer(options.stdin) ? options.stdin : Buffer.from(options.stdin)).toString('base64')}'; printf '%s' "$__lw_in" | base64 -d | {\n${command}\n}`;
  // The separator is assembled by printf: the typed text never contains it.
  return (
    `__lw_e=/tmp/.lw-stderr-$$-${token}; ( ${exports}${body}\n) 2>"$__lw_e"; __lw_rc=$?; ` +
    `printf '\\n%s_%s\\n' LWSE ${token}; cat "$__lw_e" 2>/dev/null; rm -f "$__lw_e"; (exit $__lw_rc)`
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
