/**
 * What labwright types into a shell and what it looks for in the output.
 *
 * A command never travels as typed text on its own: it is stored into the shell variable
 * `__lw_c` through short single-quoted pieces, then run by one fixed line
 *
 *     B printf 'LWB_%s_%s\n' <sid> <nonce>; B eval "$__lw_c"; B printf '\nLWE_%s_%s:%d\t\r\n' <sid> <nonce> "$?"
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
 * {@link ShellFamily}, which the first line typed into a new shell asks (see
 * {@link MarkerFactory.familyProbeLine}):
 * - `bash` and `zsh` let functions override every builtin, special ones included:
 *   `\builtin printf` (the backslash defeats an alias; `builtin` skips functions);
 * - POSIX shells (dash, BusyBox ash; mksh and ksh as family `ksh`) have no `builtin` (or,
 *   in mksh, no printf builtin), but find special builtins (`eval`, `unset`, `set`) before
 *   functions and do not let functions take their names: `\unset -f printf command`
 *   removes functions of those names before each command, and `\printf` and
 *   `\command eval` follow.
 * A function named `builtin` itself (bash, zsh) cannot be got round; the shell then never
 * prints a marker, and the command ends in an error that says so, never with a status.
 *
 * Terminal processing is normalised when the shell opens (`stty -echo -opost ...`): no
 * echo, no CR before LF, no tab expansion (BusyBox telnetd's terminal has `tab3`), no
 * character mapping. The end marker line ends with tab, CR, LF: when that comes back
 * changed (a command ran `stty sane`), or when the typed run line comes back (echo is on
 * again), the session sets the terminal back after that command, before anything else is
 * read. The recovery line after a timeout normalises first (the interrupted program may
 * have left the terminal in its own modes).
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

/**
 * How a shell's builtins are reached past functions and aliases (see the module comment):
 * `bash` and `zsh` through `builtin`; `posix` (dash, BusyBox ash) and `ksh` (mksh, ksh93)
 * by removing functions of the names used. `ksh` also aborts the whole typed line on a
 * syntax error inside `eval`, even under `command`, so its commands are syntax-checked in
 * a subshell first.
 */
export type ShellFamily = 'bash' | 'zsh' | 'posix' | 'ksh';

/** The byte patterns that delimit one command's output. */
export interface CommandMarkers {
  nonce: string;
  /** Printed before the command runs; output starts after the end of its line. */
  start: Buffer;
  /** Printed after the command, followed by `:<exit code>` and {@link END_LINE_TAIL}. */
  end: Buffer;
  /** Printed by the recovery line typed after an interrupt. */
  recovery: Buffer;
}

/**
 * What a session's end-marker line ends with when the terminal passes bytes unchanged; tab
 * expansion, CR-to-NL and NL-to-CR-NL mapping each change it.
 */
export const END_LINE_TAIL = Buffer.from('\t\r\n');

/** Part of every typed run line (never of its output): seen in the output, the terminal echoes. */
export const TYPED_RUN_LINE = Buffer.from("'LWB_%s_%s");

/** Whether `family` reaches builtins through `builtin` (else by removing functions). */
function hasBuiltin(family: ShellFamily): boolean {
  return family === 'bash' || family === 'zsh';
}

/** A word calling the shell's builtin `name` in `family`, whatever functions or aliases exist. */
function builtin(family: ShellFamily, name: string): string {
  return hasBuiltin(family) ? `\\builtin ${name}` : `\\${name}`;
}

/**
 * Before each line of a POSIX-family shell that calls `printf` or `command`: removes
 * functions of those names (`unset` is a special builtin there, found before any function;
 * the backslash defeats an alias).
 */
const POSIX_GUARD = '\\unset -f printf command 2>/dev/null';

/**
 * Terminal settings that make output arrive as the command wrote it: no echo (also not of
 * newlines), no output processing (CR LF, tab expansion, case mapping), no input mapping
 * or stripping of what labwright types. A stty that lacks one of them still turns echo and
 * CR LF off.
 */
const STTY_NORMAL = '-echo -echonl -opost -inlcr -igncr -istrip';

/** The shell's family as printed by the probe: `zsh`, `bash`, `ksh`, or nothing (POSIX). */
const FAMILY_WORD = '${ZSH_VERSION:+zsh}${BASH_VERSION:+bash}';
const KSH_WORD = '${KSH_VERSION:+ksh}';

/**
 * A function every labwright shell defines at setup: `__lw_x NAME ARGS` runs the builtin or
 * program NAME, never a function or alias of that name (see {@link MarkerFactory.setupLines}).
 */
export const GUARDED_COMMAND = '__lw_x';

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
    const id = `${this.sessionId} ${markers.nonce}`;
    return (
      `case ${FAMILY_WORD} in ?*) \\builtin unsetopt zle 2>/dev/null; \\builtin printf 'LWR_%s_%s:%s\\n' ${id} ${FAMILY_WORD};; ` +
      `*) \\unset -f printf command stty 2>/dev/null; \\printf 'LWR_%s_%s:%s\\n' ${id} "${KSH_WORD}";; esac`
    );
  }

  /** Setup typed once the family is known: quiet prompts, no history, no line editing, a newline variable. */
  setupLines(options: { pty: boolean }): string[] {
    const f = this.family;
    const lines: string[] = [];
    if (options.pty) lines.push(this.normaliseLine());
    // Prompts and hooks that print: nothing may appear between commands.
    lines.push(`PS1=''; PS2=''; PS3=''; PS4='+ '; PS0=''; ${builtin(f, 'unset')} PROMPT_COMMAND HISTFILE 2>/dev/null`);
    if (f === 'bash') {
      lines.push(`\\builtin set +o emacs +o vi +o history +o verbose +o xtrace +H 2>/dev/null`);
    } else if (f === 'zsh') {
      // Its line editor is already off (see familyProbeLine); no partial-line marker or
      // right prompt, no hooks printing between commands.
      lines.push(
        `\\builtin unsetopt prompt_sp prompt_cr verbose xtrace 2>/dev/null; RPS1=''; RPROMPT=''; ` +
          `\\builtin unset -f precmd preexec 2>/dev/null; precmd_functions=(); preexec_functions=()`,
      );
    } else {
      // One option per call: a shell that lacks one rejects the whole call. `command` keeps
      // a failing special builtin from ending a non-interactive POSIX shell.
      lines.push(['emacs', 'vi', 'gmacs', 'history', 'verbose', 'xtrace'].map((option) => `\\command set +o ${option} 2>/dev/null`).join('; '));
    }
    lines.push(`__lw_nl=$(${builtin(f, 'printf')} '\\n_'); __lw_nl=\${__lw_nl%_}`);
    // What labwright's own scripts run on this shell (exec plumbing: printf, cat, rm,
    // base64, export, cd) goes through `__lw_x`, past functions and aliases of those names.
    lines.push(`${GUARDED_COMMAND}() { ${hasBuiltin(f) ? '\\builtin command' : '\\command'} "$@"; }`);
    return lines;
  }

  /** Sets the terminal back to labwright's settings (see {@link STTY_NORMAL}). */
  normaliseLine(): string {
    const f = this.family;
    const stty = `${builtin(f, 'command')} stty`;
    const guard = hasBuiltin(f) ? '' : '\\unset -f command stty 2>/dev/null; ';
    return `${guard}${stty} ${STTY_NORMAL} 2>/dev/null || ${stty} -echo -onlcr 2>/dev/null`;
  }

  /** Every line typed for one command: it is stored into `__lw_c`, then run between markers. */
  commandLines(command: string, markers: CommandMarkers, maxLineLength: number): string[] {
    const guard = hasBuiltin(this.family) ? [] : [POSIX_GUARD];
    return [...guard, ...assignmentLines(command, maxLineLength, this.family), this.runLine(markers)];
  }

  /** The line that runs the command stored in `__lw_c` between the start and end markers. */
  runLine(markers: CommandMarkers): string {
    const f = this.family;
    const printf = builtin(f, 'printf');
    // The command itself may define a printf function: remove it again before the end marker.
    const status = hasBuiltin(f) ? '"$?"' : `"$__lw_s"`;
    const guard = hasBuiltin(f) ? '' : `__lw_s=$?; ${POSIX_GUARD}; `;
    return (
      `${printf} 'LWB_%s_%s\\n' ${this.sessionId} ${markers.nonce}; ${this.evaluation()}; ` +
      `${guard}${printf} '\\nLWE_%s_%s:%d\\t\\r\\n' ${this.sessionId} ${markers.nonce} ${status}`
    );
  }

  /** How `__lw_c` is run so that a syntax error in it is an exit status, never an aborted line. */
  private evaluation(): string {
    switch (this.family) {
      case 'bash':
      case 'zsh':
        return '\\builtin eval "$__lw_c"';
      case 'posix':
        // dash and ash abort the line on an error in the special builtin `eval`; under
        // `command` it is an ordinary error status.
        return '\\command eval "$__lw_c"';
      case 'ksh':
        // mksh aborts the line even under `command`: a function definition around the
        // command checks its syntax in a subshell; one that does not parse runs in a
        // subshell too, for its message and status.
        return (
          'if ( \\command eval "__lw_t() {$__lw_nl$__lw_c$__lw_nl}" ) >/dev/null 2>&1; ' +
          'then \\command eval "$__lw_c"; else ( \\command eval "$__lw_c" ); fi'
        );
    }
  }

  /** A line that only prints the recovery marker; typed after an interrupt. */
  recoveryLine(markers: CommandMarkers): string {
    const guard = hasBuiltin(this.family) ? '' : `${POSIX_GUARD}; `;
    return `${guard}${builtin(this.family, 'printf')} 'LWR_%s_%s\\n' ${this.sessionId} ${markers.nonce}`;
  }
}

/**
 * A line printing `format` (single-quoted) with `args` through the shell's builtin printf,
 * typed before the family is known (telnet's login probe).
 */
export function printfLine(format: string, args: string): string {
  return `case ${FAMILY_WORD} in ?*) \\builtin printf '${format}' ${args};; ` + `*) ${POSIX_GUARD}; \\printf '${format}' ${args};; esac`;
}

/** The family reported after the opening probe's marker (`:bash`, `:zsh`, `:ksh`; anything else is POSIX). */
export function parseFamily(rest: string): ShellFamily {
  const reported = /^:(bash|zsh|ksh)\b/.exec(rest)?.[1];
  return (reported as ShellFamily | undefined) ?? 'posix';
}

/** UTF-8 length of a string. */
function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
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
  const simple = `__lw_c=${shellQuote(command)}`;
  if (!command.includes('\n') && !UNTYPEABLE.test(command) && byteLength(simple) <= maxLineLength) return [simple];

  const lines = ['__lw_c='];
  const prefix = '__lw_c="$__lw_c"';
  const budget = maxLineLength - prefix.length - 2;
  const printf = builtin(family, 'printf');
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
