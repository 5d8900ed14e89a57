/**
 * What labwright types into a shell and what it looks for in the output.
 *
 * A command never travels as typed text on its own: it is stored into the shell variable
 * `__lw_c` through short single-quoted pieces, then run by one fixed line
 *
 *     printf 'LWB_%s_%s\n' <sid> <nonce>; eval "$__lw_c"; printf '\nLWE_%s_%s:%d\n' <sid> <nonce> "$?"
 *
 * Consequences, each deliberate:
 * - the rendered markers (`LWB_<sid>_<nonce>`, `LWE_<sid>_<nonce>:<code>`) never appear in
 *   the typed text, so a terminal's echo can never be mistaken for a marker;
 * - the per-session id and per-command nonce make a previous command's marker, or text
 *   that merely looks like a marker, harmless;
 * - no typed line is longer than `maxLineLength` (ash truncates at 1022 bytes and a
 *   canonical-mode pty wedges near 4 KiB), control characters and tabs are never typed
 *   raw (they would signal the shell or trigger completion), and multi-line commands,
 *   here-documents and unbalanced quotes cannot desynchronise the shell: `eval` either
 *   runs the text or reports a syntax error with an exit code.
 */
import { randomBytes } from 'node:crypto';
import { shellQuote } from '../util/shellQuote.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random lowercase alphanumeric id. */
export function randomId(length: number): string {
  const bytes = randomBytes(length);
  let id = '';
  for (const byte of bytes) id += ALPHABET[byte % ALPHABET.length];
  return id;
}

/** The byte patterns that delimit one command's output. */
export interface CommandMarkers {
  nonce: string;
  /** Printed before the command runs; output starts after the end of its line. */
  start: Buffer;
  /** Printed after the command, followed by `:<exit code>` and a newline. */
  end: Buffer;
  /** Printed by the recovery line typed after an interrupt. */
  recovery: Buffer;
}

/** Generates markers for one shell session. */
export class MarkerFactory {
  readonly sessionId = randomId(8);
  private counter = 0;

  /** Markers for the next command; the nonce never repeats within the session. */
  next(): CommandMarkers {
    this.counter += 1;
    const nonce = `${this.counter.toString(36)}${randomId(3)}`;
    return this.forNonce(nonce);
  }

  /** Markers for a fixed nonce (used for the session's opening handshake). */
  forNonce(nonce: string): CommandMarkers {
    const id = `${this.sessionId}_${nonce}`;
    return {
      nonce,
      start: Buffer.from(`LWB_${id}`),
      end: Buffer.from(`LWE_${id}:`),
      recovery: Buffer.from(`LWR_${id}`),
    };
  }

  /** The line that runs the command stored in `__lw_c` between the start and end markers. */
  runLine(markers: CommandMarkers): string {
    return (
      `printf 'LWB_%s_%s\\n' ${this.sessionId} ${markers.nonce}; eval "$__lw_c"; ` +
      `printf '\\nLWE_%s_%s:%d\\n' ${this.sessionId} ${markers.nonce} "$?"`
    );
  }

  /** A line that only prints the recovery marker; typed after an interrupt. */
  recoveryLine(markers: CommandMarkers): string {
    return `printf 'LWR_%s_%s\\n' ${this.sessionId} ${markers.nonce}`;
  }
}

/** Setup typed when a session opens: quiet prompts, no history, no line editing, a newline variable. */
export function setupLines(options: { pty: boolean }): string[] {
  const lines: string[] = [];
  // `command` keeps a failing special builtin from ending a POSIX shell; stderr is dropped
  // because shells differ in which of these they know.
  if (options.pty) lines.push('stty -echo -onlcr 2>/dev/null');
  lines.push(
    "PS1=''; PS2=''; PS3=''; PS4='+ '; unset PROMPT_COMMAND HISTFILE 2>/dev/null",
    'command set +o emacs 2>/dev/null; command set +o vi 2>/dev/null; command set +o history 2>/dev/null; command set +H 2>/dev/null',
    "__lw_nl=$(printf '\\n_'); __lw_nl=${__lw_nl%_}",
  );
  return lines;
}

/** UTF-8 length of a string. */
function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Characters that must not be typed into a terminal: controls (tab included) and DEL. */
const UNTYPEABLE = /[\x00-\x09\x0b-\x1f\x7f]/;

/**
 * Lines that store `command` into `__lw_c`, none longer than `maxLineLength` bytes.
 * A short single-line command becomes one line.
 */
export function assignmentLines(command: string, maxLineLength: number): string[] {
  if (command.includes('\0')) throw new Error('a shell command cannot contain a NUL character');
  const simple = `__lw_c=${shellQuote(command)}`;
  if (!command.includes('\n') && !UNTYPEABLE.test(command) && byteLength(simple) <= maxLineLength) return [simple];

  const lines = ['__lw_c='];
  const prefix = '__lw_c="$__lw_c"';
  const budget = maxLineLength - prefix.length - 2;
  let piece = '';
  let pieceBytes = 0;
  const flush = () => {
    if (piece) lines.push(prefix + shellQuote(piece));
    piece = '';
    pieceBytes = 0;
  };
  for (const char of command) {
    if (char === '\n') {
      flush();
      lines.push('__lw_c="$__lw_c$__lw_nl"');
      continue;
    }
    if (UNTYPEABLE.test(char)) {
      flush();
      const octal = char.charCodeAt(0).toString(8).padStart(3, '0');
      lines.push(`__lw_c="$__lw_c$(printf '\\${octal}')"`);
      continue;
    }
    const cost = char === "'" ? 4 : byteLength(char);
    if (pieceBytes + cost > budget) flush();
    piece += char;
    pieceBytes += cost;
  }
  flush();
  return lines;
}
