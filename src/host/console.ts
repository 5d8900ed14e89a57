/**
 * `host.console`: a host's serial console. One stream shared over time by its modes:
 *
 * - shell mode (`console.run`, `console.shell`): log in on the console, then the shell
 *   session core (markers, exit codes, expects, timeouts with Ctrl+C recovery);
 * - prompt mode (`console.bootloader`): commands at a boot loader's prompt (U-Boot `=>`);
 * - raw (`send`, `expect`, `waitFor`): bytes in, patterns out, across reboots.
 *
 * Every call takes the console for its duration (one user at a time, queued, bounded;
 * see ConsoleConnection); `exclusive()` holds it for a sequence. Everything the console
 * prints goes to the console log (`console: <host>` in the report), whoever is using it.
 */
import type { RemoteHostConfig } from '../config/defineLab.js';
import type { ConsoleOptions, PromptOptions } from '../config/schema.js';
import { ConsoleShellTransport } from '../session/consoleShell.js';
import { PromptSession } from '../session/promptSession.js';
import { type ExpectMatch, type ShellSession, type ShellSessionOptions, toRegExp } from '../session/shellSession.js';
import { TextCleaner } from '../session/text.js';
import type { ShellTransport } from '../session/transport.js';
import { ConsoleConnection, type ConsoleConsumer } from '../transport/consoleConnection.js';
import { consoleEndpoint, openConsoleStream } from '../transport/consoleOpen.js';
import type { NetworkPath } from '../transport/network.js';
import { AbortedError, ConnectionError, ExpectTimeoutError, LabwrightError, messageOf } from '../util/errors.js';
import { quoteForMessage, redact, registerSecret } from '../util/secrets.js';
import { abortReason, anySignal, formatDuration, sleep, withTimeout } from '../util/time.js';
import type { CommandInput, RunOptions } from './commands.js';
import { type BootOptions, type BootReport, bootSequence } from './consoleBoot.js';
import { ConsoleLog } from './consoleLog.js';
import type { HostContext } from './events.js';
import { type ExpectOptions, type SendOptions, SessionHandle } from './hostSession.js';
import type { RunResult } from './results.js';

/** What a {@link HostConsole} needs from its host. */
export interface HostConsoleDeps {
  /** The host's network path (hops), for tcp and telnet consoles. */
  path: NetworkPath;
  /** Makes a shell session reporting to the lab (the host's own wiring). */
  createShell: (name: string, transport: ShellTransport, exclusive: ShellSessionOptions['exclusive']) => ShellSession;
  /** Waits until the host's SSH answers a command (the boot stage's last step); undefined for telnet hosts. */
  sshReady?: ((timeoutMs: number) => Promise<void>) | undefined;
}

/** Options of `waitFor()`. */
export interface WaitForOptions {
  /** Bound in ms; default the host's command timeout. */
  timeout?: number;
  /** Leave the matched text in place, so the next expect/waitFor still sees it (default false: consumed). */
  keep?: boolean;
  /** Stops waiting early (an AbortedError); the test's own signal always applies. */
  signal?: AbortSignal;
}

/** A watch of the console's output for a pattern, from {@link HostConsole.watch}. */
export interface ConsoleWatch {
  /** Whether the pattern appeared. */
  seen(): boolean;
  /** Resolves once the pattern appeared; throws when `timeoutMs` passes (or `signal` fires) first. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  stop(): void;
}

/** Delay between reconnect attempts while waitFor() waits through a power cycle. */
const RECONNECT_PAUSE_MS = 250;

/** The boot loader's prompt (prompt mode) as a session: run, send, expect, awaitPrompt. */
export class BootloaderSession extends SessionHandle {
  constructor(
    private readonly prompt: PromptSession,
    binding: ConstructorParameters<typeof SessionHandle>[2],
  ) {
    super(prompt.name, prompt, binding);
  }

  /** Types a newline and waits until the prompt shows; returns what was printed before it. */
  awaitPrompt(options: { timeout?: number } = {}): Promise<string> {
    return this.prompt.awaitPrompt(options.timeout ?? this.binding.commandTimeout());
  }
}

/** The console as {@link HostConsole.interact} lends it. */
export interface ConsoleTerminal {
  /** Types bytes on the console as they are (include line ends yourself). */
  write(data: string | Buffer): void;
  /** Sends a serial BREAK; false where the carrier has none (raw TCP). */
  sendBreak(): Promise<boolean>;
  /** Resolves with the reason when the connection drops or another user takes the console over. */
  readonly closed: Promise<Error>;
}

export class HostConsole {
  /** The console's single stream: owner, reconnects, cross-process lock. */
  readonly connection: ConsoleConnection;
  readonly options: ConsoleOptions;
  /** `tcp 127.0.0.1:4555`-style description of where the console is. */
  readonly endpoint: string;
  private readonly log: ConsoleLog;
  private readonly readerCleaner = new TextCleaner();
  /** Cleaned console text since the read cursor (raw expect/waitFor). */
  private readerText = '';
  private shellSession: ShellSession | undefined;
  private shellHandle: SessionHandle | undefined;
  private promptHandle: BootloaderSession | undefined;
  private readonly raw: ConsoleConsumer = { data: () => {}, closed: () => {} };
  /** Watches of what the console prints from now on (see {@link watch}). */
  private readonly watches = new Set<(text: string) => void>();

  constructor(
    private readonly config: RemoteHostConfig,
    private readonly context: HostContext,
    private readonly deps: HostConsoleDeps,
  ) {
    if (!config.console) {
      throw new LabwrightError('has no console.', {
        host: config.name,
        protocol: 'console',
        hint: 'Add a console section to the host in the lab config (console: { transport: "tcp", port: 7001 }).',
      });
    }
    this.options = config.console;
    const endpoint = consoleEndpoint(this.options, config.address);
    this.endpoint = endpoint.description;
    this.log = new ConsoleLog(config.name, context.events);
    this.connection = new ConsoleConnection({
      host: config.name,
      open: () => openConsoleStream(config.name, this.options, deps.path, config.address, (note) => this.options.log && this.log.note(note)),
      lockKey: endpoint.key,
      claimTimeout: this.options.claimTimeout,
      answerQueries: this.options.answerQueries,
      onBytes: (bytes, time) => {
        if (this.options.log) this.log.push(bytes, time);
        const text = this.readerCleaner.push(bytes);
        this.readerText += text;
        if (this.readerText.length > 4 * 1024 * 1024) this.readerText = this.readerText.slice(-2 * 1024 * 1024);
        for (const watch of this.watches) watch(text);
      },
      onEvent: (event, detail) => {
        if (this.options.log) this.log.note(`console ${event}${detail ? ` (${detail})` : ''}`);
        this.context.events.emit({ type: 'connection', time: Date.now(), host: config.name, protocol: 'console', event, ...(detail ? { detail } : {}) });
      },
    });
  }

  private get binding() {
    return { host: this.config.name, context: this.context, commandTimeout: () => this.config.commandTimeout ?? this.context.defaultCommandTimeout() };
  }

  /** The shell-mode transport (for hosts whose `term` is `console`). */
  shellTransport(): ShellTransport {
    const user = this.options.user ?? this.config.user;
    return new ConsoleShellTransport({
      host: this.config.name,
      connection: this.connection,
      console: this.options,
      user,
      password: this.config.users[user]?.password,
      onKernelLine: (line) => this.context.events.emit({ type: 'kernel', time: Date.now(), host: this.config.name, session: 'console', line: redact(line) }),
    });
  }

  /** The shell-mode session on the console (one per console). */
  get shellSessionInstance(): ShellSession {
    this.shellSession ??= this.deps.createShell('console', this.shellTransport(), (what, body) => this.connection.exclusive(what, body));
    return this.shellSession;
  }

  /** Shell mode: run/send/expect on the shell logged in on the console. */
  get shell(): SessionHandle {
    this.shellHandle ??= new SessionHandle('console', this.shellSessionInstance, this.binding);
    return this.shellHandle;
  }

  /** Prompt mode: the boot loader's prompt (U-Boot `=>` by default; see console.prompt). */
  get bootloader(): BootloaderSession {
    this.promptHandle ??= this.promptMode('bootloader');
    return this.promptHandle;
  }

  /**
   * A prompt-mode session with its own prompt settings, for consoles with another prompt
   * than the configured one (a second boot stage, a vendor CLI, a console without exit
   * status). It shares the console with every other mode.
   */
  promptMode(name: string, overrides: Partial<PromptOptions> = {}): BootloaderSession {
    return new BootloaderSession(
      new PromptSession({
        host: this.config.name,
        name,
        connection: this.connection,
        prompt: { ...this.options.prompt, ...overrides },
        newline: this.options.newline,
        recoveryTimeout: this.config.shell.recoveryTimeout,
        observer: {
          sent: (text, secret) => this.context.events.emit({ type: 'sent', time: Date.now(), host: this.config.name, session: name, text, secret }),
          lifecycle: (event, detail) =>
            this.context.events.emit({
              type: 'session',
              time: Date.now(),
              host: this.config.name,
              session: name,
              protocol: 'console',
              event,
              ...(detail ? { detail } : {}),
            }),
        },
      }),
      this.binding,
    );
  }

  /** Shell mode: runs commands on the console's shell (logging in first when needed). */
  run(commands: CommandInput | readonly CommandInput[], options?: RunOptions): Promise<RunResult> {
    return this.shell.run(commands, options);
  }

  /**
   * Types raw text on the console (include the line end yourself). The console leaves
   * shell and prompt mode: their next command finds its prompt again.
   */
  async send(text: string, options: SendOptions = {}): Promise<void> {
    if (options.secret) registerSecret(text.replace(/\r?\n$/, ''));
    await this.connection.exclusive('send', async () => {
      await this.connection.ensure();
      this.connection.use(this.raw, 'raw send');
      this.connection.writeNow(text);
    });
    this.context.events.emit({ type: 'sent', time: Date.now(), host: this.config.name, session: 'console', text, secret: options.secret ?? false });
  }

  /**
   * Hands the console to a person or a program (`labwright console`): every byte it prints
   * goes to `onData` as it arrives, `terminal.write` types, and other users of the console
   * wait (bounded by `console.claimTimeout`) until `body` settles. `terminal.closed`
   * resolves with the reason if the connection drops under the session. Shell and prompt
   * mode find their prompt again afterwards.
   */
  interact<T>(onData: (bytes: Buffer) => void, body: (terminal: ConsoleTerminal) => Promise<T>): Promise<T> {
    return this.connection.exclusive('an interactive session', async () => {
      await this.connection.ensure();
      let dropped!: (error: Error) => void;
      const closed = new Promise<Error>((resolve) => (dropped = resolve));
      const consumer: ConsoleConsumer = {
        data: onData,
        closed: (error) => dropped(error),
        displaced: (by) => dropped(new Error(`taken over by ${by}`)),
      };
      this.connection.use(consumer, 'interactive session');
      try {
        return await body({ write: (data) => this.connection.writeNow(data), sendBreak: () => this.connection.sendBreak(), closed });
      } finally {
        this.connection.drop(consumer);
      }
    });
  }

  /** Sends a serial BREAK (serial devices, RFC 2217 and telnet terminal servers); false where the carrier has none (raw TCP). */
  sendBreak(): Promise<boolean> {
    return this.connection.exclusive('break', () => this.connection.sendBreak());
  }

  /**
   * Waits for `pattern` in what the console printed since the last match (or
   * `skipOutput()`), and consumes up to the match. Fails at once if the console
   * connection drops; use {@link waitFor} to wait through reboots and reconnects.
   */
  expect(pattern: RegExp | string, options: ExpectOptions = {}): Promise<ExpectMatch> {
    return this.read(pattern, options.timeout, false, false, options.signal);
  }

  /**
   * Waits for `pattern` in the console's output since the last match (or `skipOutput()`),
   * through reboots: if the connection drops (QEMU restarted, a terminal server
   * hiccup), it reconnects and keeps waiting until the timeout. Reading does not take
   * the console: a shell command may run meanwhile.
   */
  waitFor(pattern: RegExp | string, options: WaitForOptions = {}): Promise<ExpectMatch> {
    return this.read(pattern, options.timeout, true, options.keep ?? false, options.signal);
  }

  /**
   * Watches what the console prints from now on for `pattern`, apart from expect() and
   * waitFor() (their cursor is left alone): how a reboot learns that the board booted to its
   * login prompt. Only what arrives while the console is connected is seen. `stop()` when done.
   */
  watch(pattern: RegExp): ConsoleWatch {
    let text = '';
    let seen = false;
    const listener = (chunk: string) => {
      if (seen) return;
      text = (text + chunk).slice(-4096);
      seen = toRegExp(pattern).test(text);
      if (seen) this.watches.delete(listener);
    };
    this.watches.add(listener);
    return {
      seen: () => seen,
      wait: async (timeoutMs, signal) => {
        const deadline = Date.now() + timeoutMs;
        while (!seen) {
          const left = deadline - Date.now();
          if (left <= 0 || signal?.aborted) {
            throw new LabwrightError(`no ${String(pattern)} on the console (${this.endpoint}) yet.`, { host: this.config.name, protocol: 'console' });
          }
          if (!this.connection.connected) {
            // A console that dropped (QEMU restarted, a terminal server hiccup) is reconnected.
            await this.connection.ensure().catch(() => sleep(Math.min(RECONNECT_PAUSE_MS, left), signal).catch(() => {}));
            continue;
          }
          await this.connection.nextEvent(left, signal);
        }
      },
      stop: () => void this.watches.delete(listener),
    };
  }

  /** Forgets what the console printed so far: the next expect/waitFor looks only at newer output. */
  skipOutput(): void {
    this.readerText = '';
  }

  private async read(
    pattern: RegExp | string,
    timeoutMs: number | undefined,
    reconnect: boolean,
    keep: boolean,
    callSignal?: AbortSignal,
  ): Promise<ExpectMatch> {
    const timeout = timeoutMs ?? this.binding.commandTimeout();
    this.context.checkTimeout(this.config.name, timeout);
    const signal = anySignal(callSignal, this.context.signal());
    const regex = toRegExp(pattern);
    const deadline = Date.now() + timeout;
    const base = { host: this.config.name, session: 'console', pattern: String(pattern) };
    let lastError: Error | undefined;
    try {
      if (!reconnect) await this.connection.ensure();
      for (;;) {
        const match = regex.exec(this.readerText);
        if (match) {
          const end = match.index + match[0].length;
          const found = { match, before: this.readerText.slice(0, match.index), text: this.readerText.slice(0, end) };
          if (!keep) this.readerText = this.readerText.slice(end);
          this.context.events.emit({ ...base, type: 'expect', time: Date.now(), matched: redact(match[0]) });
          return found;
        }
        const left = deadline - Date.now();
        if (left <= 0) break;
        if (signal?.aborted) {
          throw new AbortedError(`waiting for ${String(regex)} on the console (${this.endpoint}) was aborted: ${abortReason(signal)}.`, {
            host: this.config.name,
            protocol: 'console',
          });
        }
        if (!this.connection.connected) {
          if (!reconnect) {
            throw new ConnectionError('closed', `the console connection (${this.endpoint}) was lost while waiting for ${String(regex)}.`, {
              host: this.config.name,
              protocol: 'console',
              hint: 'Use console.waitFor() to wait through reboots and reconnects.',
            });
          }
          try {
            await this.connection.ensure();
          } catch (error) {
            lastError = error as Error;
            await sleep(Math.min(RECONNECT_PAUSE_MS, left), signal).catch(() => {});
          }
          continue;
        }
        await this.connection.nextEvent(left, signal);
      }
      throw new ExpectTimeoutError(
        `${String(regex)} did not appear on the console (${this.endpoint}) within ${formatDuration(timeout)}${lastError ? ` (the console was unreachable: ${lastError.message})` : ''}; last output: ${quoteForMessage(this.readerText, 400)}`,
        this.readerText,
        {
          host: this.config.name,
          protocol: 'console',
          hint: 'Check the pattern against the console log, that the board is powered and booting, or raise the timeout.',
        },
      );
    } catch (error) {
      this.context.events.emit({ ...base, type: 'expect', time: Date.now(), error: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  }

  /**
   * Waits for the boot loader's autoboot countdown (console.autoboot.pattern), stops it
   * with the configured key, and returns the boot loader's prompt session once its prompt
   * shows. If the board already sits at the prompt (the prompt is the last thing it printed
   * since the last match), that prompt is used directly.
   */
  interruptAutoboot(options: { timeout?: number } = {}): Promise<BootloaderSession> {
    const { autoboot } = this.options;
    const timeout = options.timeout ?? autoboot.timeout;
    return this.connection.exclusive('interrupting autoboot', () =>
      this.context.step(`${this.config.name}: interrupt autoboot`, async () => {
        // The countdown, or the prompt as the last thing printed (the board already waits there).
        const prompt = this.options.prompt.pattern;
        const either = new RegExp(
          `(?:${autoboot.pattern.source})|(?:${prompt.source.endsWith('$') ? prompt.source : `${prompt.source}$`})`,
          autoboot.pattern.flags.replace(/[gym]/g, ''),
        );
        const found = await this.waitFor(either, { timeout });
        if (autoboot.pattern.test(found.match[0])) {
          // Boot loaders drain their input before the countdown: type the key a few times.
          for (let i = 0; i < 3; i++) {
            await this.send(autoboot.key);
            await new Promise((resolve) => setTimeout(resolve, 30));
          }
        }
        await this.bootloader.awaitPrompt({ timeout: Math.max(5_000, this.config.shell.recoveryTimeout) });
        return this.bootloader;
      }),
    );
  }

  /**
   * The boot-loader stage: interrupt autoboot (or let it boot), run boot-loader commands,
   * boot, log in on the console, and (for hosts with SSH) wait until SSH answers.
   */
  boot(options: BootOptions = {}): Promise<BootReport> {
    return bootSequence(this, options, {
      host: this.config.name,
      context: this.context,
      sshReady: this.deps.sshReady,
      sshByDefault: this.config.term === 'ssh',
      loginPrompt: this.options.loginPrompt,
    });
  }

  /** Holds the console for `body` (a sequence of calls); other callers queue meanwhile. */
  exclusive<T>(body: () => Promise<T>, options: { timeout?: number } = {}): Promise<T> {
    return this.connection.exclusive('an exclusive section', body, options.timeout);
  }

  /** Shows the open line of the console log (a prompt) now; called at the end of each test. */
  flushLog(): void {
    this.log.flush();
  }

  /** Closes the console's shell mode, keeping the connection: its next command finds (or logs in to) the shell again. */
  async closeShell(): Promise<void> {
    await this.shellSession?.close();
  }

  /** Closes the console connection (the board keeps running; a logged-in shell stays logged in). */
  async close(): Promise<void> {
    await this.shellSession?.close().catch(() => {});
    await this.connection.close();
  }
}

/** Polls until SSH runs `true` on the host, within `timeoutMs` (the boot stage's last step). */
export async function waitForSsh(
  host: string,
  executor: { exec(command: string, options: { timeout: number }): Promise<{ exitCode: number | null }> },
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt finished';
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      const outcome = await withTimeout(executor.exec('true', { timeout: Math.min(left, 10_000) }), Math.min(left, 15_000), () => new Error('no answer'));
      if (outcome.exitCode === 0) return;
      last = `true exited with ${outcome.exitCode}`;
    } catch (error) {
      last = messageOf(error);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(0, deadline - Date.now()))));
  }
  throw new ConnectionError('timeout', `SSH did not answer within ${formatDuration(timeoutMs)} after the console login; last attempt: ${last}`, {
    host,
    protocol: 'ssh',
    hint: 'Check that the board brings its network and SSH server up, and the address and port in the lab config.',
  });
}
