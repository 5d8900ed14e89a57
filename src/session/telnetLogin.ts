/**
 * The login dialogue of a telnet device: answer the login and password prompts, recognise
 * a refused login, and prove that a shell runs before the session core takes over.
 *
 * Prompts are matched against the text since the last thing we typed, and only once the
 * device has been quiet for a moment: a prompt is text followed by silence, and testing
 * every chunk would let "Last login: ..." (printed in pieces after a good login) pass for
 * a login prompt. A refusal message (`loginFailed`) counts at once.
 *
 * Success is proven with a probe line, `printf 'LWL_%s\n' <id>` through the shell's builtin
 * printf (a profile may define a function of that name), whose output never appears in its
 * own echo. It is typed only after the device printed something other than
 * whitespace after the password (the shell's prompt, the motd): /bin/login flushes input
 * typed earlier, and typing during a refused login would feed the next login prompt.
 */
import type { TelnetOptions } from '../config/schema.js';
import type { ConsoleStreamListener } from '../transport/consoleStream.js';
import { type ConnectFailure, ConnectionError } from '../util/errors.js';
import { quoteForMessage, registerSecret } from '../util/secrets.js';
import { formatDuration } from '../util/time.js';
import { TextCleaner } from './text.js';
import { printfLine, randomId } from './wire.js';

/** The device closed the connection before labwright typed anything: no login attempt was used, trying again is safe. */
export class ClosedBeforeTypingError extends ConnectionError {}

/** The byte stream a login runs on: a telnet connection or a serial console. */
export interface LoginStream {
  attach(listener: ConsoleStreamListener): void;
  write(data: string | Buffer): void;
}

/** Who logs in where, for the dialogue and its error messages. */
export interface TelnetLoginParams {
  /** Lab host name (errors). */
  host: string;
  /** `address:port` (errors). */
  endpoint: string;
  user: string;
  password: string | undefined;
  options: Pick<TelnetOptions, 'loginPrompt' | 'passwordPrompt' | 'loginFailed' | 'loginTimeout'>;
  /** What ends a typed line. */
  newline: string;
  /** Protocol named in errors; default `telnet`. */
  protocol?: 'telnet' | 'console';
  /** Typed at once, to make a quiet device show its prompt (a console's getty). */
  wake?: string;
  /**
   * Consoles: a shell may already be logged in (with an empty prompt and no echo, as
   * labwright leaves it). When the device stays silent this long (ms) after the wake
   * before any prompt, the probe is typed: an answer means a shell is there.
   */
  probeWhenQuietMs?: number;
}

/** How long the device must be quiet before its last text counts as a prompt. */
const PROMPT_SETTLE_MS = 120;
/** A device that never goes quiet still has its prompts checked this often. */
const PROMPT_SETTLE_MAX_MS = 1_000;
/** A probe not answered within this is typed again (the first may have met a flushed tty). */
const PROBE_RETRY_MS = 2_000;
/** Text kept for error messages. */
const TAIL = 400;

/**
 * Runs the login dialogue on a freshly connected telnet stream. Resolves with the bytes
 * the shell printed after the probe's answer; rejects with a {@link ConnectionError}
 * (kind `auth` for a refused login) and leaves the stream to the caller to destroy.
 */
export function telnetLogin(telnet: LoginStream, params: TelnetLoginParams): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const { host, user, password, newline } = params;
    registerSecret(password);
    const options = {
      ...params.options,
      loginPrompt: stateless(params.options.loginPrompt),
      passwordPrompt: stateless(params.options.passwordPrompt),
      loginFailed: stateless(params.options.loginFailed),
    };
    const probeId = randomId(10);
    const probeAnswer = Buffer.from(`LWL_${probeId}`);
    const probeLine = printfLine('LWL_%s\\n', probeId) + newline;
    const cleaner = new TextCleaner();

    /** Cleaned text since we last typed something. */
    let recent = '';
    /** Whether anything was typed yet: a connection closed before that cost no login attempt. */
    let typed = false;
    /** Cleaned text of the whole dialogue (its tail), for error messages. */
    let transcript = '';
    /** Raw bytes since the probe was first typed, to find its answer. */
    let raw = Buffer.alloc(0);
    let sentUser = false;
    let sentPassword = false;
    let probing = false;
    let settleTimer: NodeJS.Timeout | undefined;
    let firstUnsettled: number | undefined;
    let probeTimer: NodeJS.Timeout | undefined;
    let quietTimer: NodeJS.Timeout | undefined;
    let done = false;

    const finish = (error: Error | undefined, rest?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(settleTimer);
      clearTimeout(probeTimer);
      clearTimeout(quietTimer);
      clearTimeout(overall);
      if (error) reject(error);
      else resolve(rest ?? Buffer.alloc(0));
    };
    const lastOutput = () => quoteForMessage(transcript, TAIL);
    const fail = (kind: ConnectFailure, detail: string, hint: string) =>
      finish(new ConnectionError(kind, detail, { host, protocol: params.protocol ?? 'telnet', hint }));
    const failUntyped = (kind: ConnectFailure, detail: string, hint: string) =>
      finish(new ClosedBeforeTypingError(kind, detail, { host, protocol: params.protocol ?? 'telnet', hint }));
    const refused = (why: string) =>
      fail(
        'auth',
        `login as "${user}" on ${params.endpoint} was refused: ${why}.`,
        `Check the user and password of host "${host}" in the lab config (or telnet.loginFailed if this is not a refusal).`,
      );
    const type = (text: string) => {
      typed = true;
      recent = '';
      try {
        telnet.write(text);
      } catch {
        // The connection is gone; its close event reports it.
      }
    };
    const typeProbe = () => {
      if (done) return;
      type(probeLine);
      clearTimeout(probeTimer);
      probeTimer = setTimeout(typeProbe, PROBE_RETRY_MS);
    };

    const overall = setTimeout(
      () =>
        fail(
          'timeout',
          `the login on ${params.endpoint} did not complete within ${formatDuration(options.loginTimeout)} (${stage()}); last output: ${lastOutput()}.`,
          probing
            ? "The device printed something after the password but no shell ran labwright's probe: check that the login shell is a POSIX shell and that its profile defines no function named `builtin` (bash, zsh), or raise telnet.loginTimeout."
            : 'Check telnet.loginPrompt and telnet.passwordPrompt against the output above, or raise telnet.loginTimeout.',
        ),
      options.loginTimeout,
    );
    const stage = () =>
      probing
        ? 'no shell answered after the password'
        : sentPassword
          ? 'waiting after the password'
          : sentUser
            ? 'no password prompt after the user name'
            : options.loginPrompt.test(recent)
              ? 'the login prompt had come, nothing typed yet'
              : 'no login prompt seen';

    /** Prompts, checked once the device is quiet. */
    const settle = () => {
      firstUnsettled = undefined;
      if (done) return;
      const text = recent;
      const failure = sentUser || sentPassword ? failureLine(text, options.loginFailed, false) : undefined;
      if (failure !== undefined) return refused(`the device answered ${quoteForMessage(failure, 200)}`);
      if (options.loginPrompt.test(text)) {
        if (sentUser) return refused(`the device asked for the login again: ${quoteForMessage(lastLine(text), 200)}`);
        sentUser = true;
        return type(user + newline);
      }
      if (options.passwordPrompt.test(text)) {
        if (!sentUser && probing && params.probeWhenQuietMs !== undefined) {
          // A console probed while a getty came up: the probe was taken as a user name.
          // An empty password ends that login attempt; the next login prompt is answered.
          probing = false;
          clearTimeout(probeTimer);
          return type(newline);
        }
        if (sentPassword) return refused(`the device asked for the password again: ${quoteForMessage(lastLine(text), 200)}`);
        if (password === undefined) {
          return fail(
            'auth',
            `the device asks for a password for "${user}" and the lab config has none.`,
            `Add a password for user "${user}" of host "${host}" to the lab config.`,
          );
        }
        sentPassword = true;
        return type(password + newline);
      }
      // Something other than a prompt after our last credential: a shell (or a banner we
      // cannot tell from one; the probe decides). Without a password configured the
      // echo of the user name does not count.
      const credentialsDone = sentPassword || (sentUser && password === undefined);
      const meaningful = sentPassword ? text.trim() : text.replace(user, '').trim();
      if (credentialsDone && !probing && meaningful !== '') {
        probing = true;
        typeProbe();
      }
    };

    /** A silent console may hide a logged-in shell: probe it (only before any credential). */
    const armQuietProbe = () => {
      if (params.probeWhenQuietMs === undefined || sentUser || sentPassword || probing) return;
      clearTimeout(quietTimer);
      quietTimer = setTimeout(() => {
        if (done || sentUser || sentPassword || probing) return;
        if (options.loginPrompt.test(recent) || options.passwordPrompt.test(recent)) return;
        probing = true;
        typeProbe();
      }, params.probeWhenQuietMs);
    };

    telnet.attach({
      data: (bytes) => {
        if (done) return;
        armQuietProbe();
        const text = cleaner.push(bytes);
        recent += text;
        transcript = (transcript + text).slice(-TAIL * 4);
        // A refusal counts at once, reported with its whole line (so once that line ended,
        // or at the next quiet moment).
        if ((sentUser || sentPassword) && failureLine(recent, options.loginFailed, true) !== undefined) {
          return refused(`the device answered ${quoteForMessage(failureLine(recent, options.loginFailed, true) ?? '', 200)}`);
        }
        if (probing) {
          raw = Buffer.concat([raw, bytes]);
          const at = raw.indexOf(probeAnswer);
          const lineEnd = at === -1 ? -1 : raw.indexOf(0x0a, at + probeAnswer.length);
          if (lineEnd !== -1) return finish(undefined, raw.subarray(lineEnd + 1));
          if (raw.length > 64 * 1024) raw = raw.subarray(raw.length - probeAnswer.length);
        }
        // Re-arm the quiet timer, but never postpone the prompt check beyond the maximum.
        const now = Date.now();
        firstUnsettled ??= now;
        clearTimeout(settleTimer);
        settleTimer = setTimeout(settle, Math.max(0, Math.min(PROMPT_SETTLE_MS, firstUnsettled + PROMPT_SETTLE_MAX_MS - now)));
      },
      closed: (error) =>
        (typed ? fail : failUntyped)(
          'closed',
          `the device closed the connection during the login (${stage()})${error ? `: ${error.message}` : ''}; last output: ${lastOutput()}.`,
          params.protocol === 'console'
            ? 'Check the console connection (the terminal server may allow one client at a time).'
            : 'Check that the device accepts telnet logins (maximum sessions, login attempts, a locked account).',
        ),
    });
    if (params.wake) type(params.wake);
    armQuietProbe();
  });
}

/**
 * The line of `text` in which `pattern` matches, trimmed; with `complete`, only once that
 * line has ended.
 */
function failureLine(text: string, pattern: RegExp, complete: boolean): string | undefined {
  const match = pattern.exec(text);
  if (!match) return undefined;
  const start = text.lastIndexOf('\n', match.index) + 1;
  const end = text.indexOf('\n', match.index + match[0].length);
  if (end === -1 && complete) return undefined;
  return text
    .slice(start, end === -1 ? undefined : end)
    .trim()
    .slice(0, 200);
}

/** `pattern` without the g and y flags, which would make test() and exec() stateful. */
function stateless(pattern: RegExp): RegExp {
  return pattern.global || pattern.sticky ? new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')) : pattern;
}

/** The last non-empty line of `text`, for messages. */
function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return (lines[lines.length - 1] ?? text.trim()).slice(-200);
}
