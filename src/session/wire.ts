/**
 * What labwright types into a shell and what it looks for in the output.
 *
 * A command never travels as typed text on its own: it is stored into the shell variable
 * `__lw_c` through short single-quoted pieces, then run by one fixed line
 *
 *     B printf 'LWB_%s_%s\n' <sid> <nonce>; B eval "$__lw_c"; B printf '\nLWE_%s_%s:%d\t\n' <sid> <nonce> "$?"
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
 *
 * The shell's own builtins, never a function or alias of the same name (`B` above). A
 * profile or an earlier command may define `eval`, `printf`, `command`, `stty`, `set` or
 * `unset` as functions or aliases; called by name they would run instead of the builtin
 * and could report a status the command never had. How to reach the builtin differs by
 * shell family, which the first line typed into a new shell asks (see {@link familyProbeLine}):
 * - `bash` and `zsh` let functions override every builtin, special ones included:
 *   `\builtin printf` (the backslash defeats an alias; `builtin` skips functions);
 * - POSIX shells (dash, BusyBox ash, mksh, ksh) have no `builtin` (or, in mksh, no printf
 *   builtin), but find special builtins (`eval`, `unset`, `set`) before functions and do not
 *   let functions take their names: `\unset -f printf` removes a function of that name
 *   before each command, and `\eval`, `\printf` follow.
 * A function named `builtin` itself (bash, zsh) cannot be got round; the shell then never
 * prints a marker, and the command ends in an error that says so, never with a status.
 *
 * Terminal processing is normalised when the shell opens (`stty -echo -opost ...`): no
 * echo, no CR before LF, no tab expansion (BusyBox telnetd's terminal has `tab3`), no
 * character mapping. The end marker line carries a tab: when it comes back changed (a
 * command ran `stty sane`, or a program killed by a timeout left the terminal in its own
 * modes), the session types the normalisation again before the next command.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random lowercase alphanumeric id. */
export function randomId(length: number): string {
  const bytes = randomBytes(length);
  let id = '';
  for (const byte of bytes) id += ALPHABET[byte % ALPHABET.length];
  return id;
}

/**
 * How builtins are reached past functions and aliases: `bash` and `zsh` through
 * `builtin`, other (POSIX) shells by removing functions of the names used.
 */
export type ShellFamily = 'bash' | 'zsh' | 'posix';

/** The byte patterns that delimit one command's output. */
export interface CommandMarkers {
  nonce: string;
  /** Printed before the command runs; output starts after the end of its line. */
  start: Buffer;
  /** Printed after the command, followed by `:<exit code>`, a tab and a newline. */
  end: Buffer;
  /** Printed by the recovery line typed after an interrupt. */
  recovery: Buffer;
}

/** What a session's end-marker line ends with when the terminal passes bytes unchanged. */
export const END_LINE_TAIL = Buffer.from('\t\n');

/** A word calling the shell's builtin `name` in `family`, whatever functions or aliases exist. */
function builtin(family: ShellFamily, name: string): string {
  return family === 'posix' ? `\\${name}` : `\\builtin ${name}`;
}

/**
 * Before each line of a POSIX-family shell that calls `printf`: removes a function of that
 * name (`unset` is a special builtin there, found before any function; the backslash
 * defeats an alias).
 */
const POSIX_GUARD = '\\unset -f printf 2>/dev/null';

/**
 * Terminal settings that make output arrive as the command wrote it: no echo (also not of
 * newlines), no output processing (CR LF, tab expansion, case mapping), no input mapping
 * or stripping of what labwright types. A stty that lacks one of them still turns echo and
 * CR LF off.
 */
const STTY_NORMAL = '-echo -echonl -opost -inlcr -igncr -istrip';

/** Generates markers and the typed lines of one shell session. */
export class MarkerFactory {
  readonly sessionId = randomId(8);
  /** The shell's family, known after the opening probe ({@link parseFamily}). */
  family: ShellFamily = 'posix';
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

  /**
   * The first line typed into a new shell, before its family is known: removes functions
   * that would hide what the POSIX family needs, then prints the recovery marker followed
   * by `:<family>`. Works in every POSIX shell; `case` is syntax, not a command.
   *
   * zsh's line editor is turned off here, alone on its line and before anything else is
   * typed: ZLE reads ahead of the line it edits, and what it has read is lost once it is
   * off (the lines after `unsetopt zle` in the same write never run).
   */
  familyProbeLine(markers: CommandMarkers): string {
    const family = '${ZSH_VERSION:+zsh}${BASH_VERSION:+bash}';
    return (
      `case ${family} in ?*) \\builtin unsetopt zle 2>/dev/null; \\builtin printf 'LWR_%s_%s:%s\\n' ${this.sessionId} ${markers.nonce} ${family};; ` +
      `*) \\unset -f printf command stty 2>/dev/null; \\printf 'LWR_%s_%s:posix\\n' ${this.sessionId} ${markers.nonce};; esac`
    );
  }

  /** Setup typed once the family is known: quiet prompts, no history, no line editing, a newline variable. */
  setupLines(options: { pty: boolean }): string[] {
    const f = this.family;
    const lines: string[] = [];
    if (options.pty) lines.push(this.normaliseLine());
    // Prompts and hooks that print: nothing may appear between commands.
    lines.push(`PS1=''; PS2=''; PS3=''; PS4='+ '; PS0=''; ${builtin(f, 'unset')} PROMPT_COMMAND HISTFILE 2>/dev/null`);
    if (f === 'posix') {
      // One option per call: a shell that lacks one rejects the whole call. `command` keeps
      // a failing special builtin from ending a non-interactive POSIX shell.
      lines.push(['emacs', 'vi', 'gmacs', 'history', 'verbose', 'xtrace'].map((option) => `\\command set +o ${option} 2>/dev/null`).join('; '));
    } else if (f === 'bash') {
      lines.push(`\\builtin set +o emacs +o vi +o history +o verbose +o xtrace +H 2>/dev/null`);
    } else {
      // zsh (its line editor is already off, see familyProbeLine): no partial-line marker
      // or right prompt, no hooks printing between commands.
      lines.push(
        `\\builtin unsetopt prompt_sp prompt_cr verbose xtrace 2>/dev/null; RPS1=''; RPROMPT=''; ` +
          `\\builtin unset -f precmd preexec 2>/dev/null; precmd_functions=(); preexec_functions=()`,
      );
    }
    lines.push(`__lw_nl=$(${builtin(f, 'printf')} '\\n_'); __lw_nl=\${__lw_nl%_}`);
    return lines;
  }

  /** Sets the terminal back to labwright's settings (see {@link STTY_NORMAL}). */
  normaliseLine(): string {
    const stty = this.family === 'posix' ? '\\command stty' : '\\builtin command stty';
    const guard = this.family === 'posix' ? '\\unset -f command stty 2>/dev/null; ' : '';
    return `${guard}${stty} ${STTY_NORMAL} 2>/dev/null || ${stty} -echo -onlcr 2>/dev/null`;
  }

  /** Every line typed for one command: it is stored into `__lw_c`, then run between markers. */
  commandLines(command: string, markers: CommandMarkers, maxLineLength: number): string[] {
    const guard = this.family === 'posix' ? [POSIX_GUARD] : [];
    return [...guard, ...assignmentLines(command, maxLineLength, this.family), this.runLine(markers)];
  }

  /** The line that runs the command stored in `__lw_c` between the start and end markers. */
  runLine(markers: CommandMarkers): string {
    const printf = builtin(this.family, 'printf');
    return (
      `${printf} 'LWB_%s_%s\\n' ${this.sessionId} ${markers.nonce}; ${builtin(this.family, 'eval')} "$__lw_c"; ` +
      `${printf} '\\nLWE_%s_%s:%d\\t\\n' ${this.sessionId} ${markers.nonce} "$?"`
    );
  }

  /** A line that only prints the recovery marker; typed after an interrupt. */
  recoveryLine(markers: CommandMarkers): string {
    const guard = this.family === 'posix' ? `${POSIX_GUARD}; ` : '';
    return `${guard}${builtin(this.family, 'printf')} 'LWR_%s_%s\\n' ${this.sessionId} ${markers.nonce}`;
  }
}

/**
 * A line printing `format` (single-quoted) with `args` through the shell's builtin printf,
 * typed before the family is known (telnet's login probe).
 */
export function printfLine(format: string, args: string): string {
  return (
    `case \${ZSH_VERSION:+z}\${BASH_VERSION:+b} in ?*) \\builtin printf '${format}' ${args};; ` +
    `*) ${POSIX_GUARD}; \\printf '${format}' ${args};; esac`
  );
}

/** The family reported after the opening probe's marker (`:bash`, `:zsh`, `:posix`). */
export function parseFamily(rest: string): ShellFamily {
  const reported = /^:(bash|zsh|posix)\b/.exec(rest)?.[1];
  return (reported as ShellFamily | undefined) ?? 'posix';
}

/** UTF-8 length of a string. */
function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** `'text'` as a single-quoted shell word; `'` becomes `'\''`. */
function singleQuoted(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Characters that must not be typed into a terminal: controls (tab included) and DEL. */
const UNTYPEABLE = /[\x00-\x09\x0b-\x1f\x7f]/;

/**
 * Lines that store `command` into `__lw_c`, none longer than `maxLineLength` bytes.
 * A short single-line command becomes one line. Control characters are produced by the
 * `family`'s builtin printf.
 */
export function assignmentLines(command: string, maxLineLength: number, family: ShellFamily = 'posix'): string[] {
  if (command.includes('\0')) throw new Error('a shell command cannot contain a NUL character');
  const simple = `__lw_c=${singleQuoted(command)}`;
  if (!command.includes('\n') && !UNTYPEABLE.test(command) && byteLength(simple) <= maxLineLength) return [simple];

  const lines = ['__lw_c='];
  const prefix = '__lw_c="$__lw_c"';
  const budget = maxLineLength - prefix.length - 2;
  const printf = builtin(family, 'printf');
  let piece = '';
  let pieceBytes = 0;
  const flush = () => {
    if (piece) lines.push(prefix + singleQuoted(piece));
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
      lines.push(`__lw_c="$__lw_c$(${printf} '\\${octal}')"`);
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
