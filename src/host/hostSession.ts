/** Named shell sessions: parallel persistent shells on one host, and their registry. */
import type { CommandSession, ExpectMatch, ShellSession } from '../session/shellSession.js';
import { LabwrightError } from '../util/errors.js';
import { redact } from '../util/secrets.js';
import { anySignal } from '../util/time.js';
import { type CommandInput, runCommands, type RunOptions } from './commands.js';
import type { HostContext } from './events.js';
import type { RunResult } from './results.js';

/** Options of `expect()`. */
export interface ExpectOptions {
  /** Bound in ms; default: the host's command timeout. */
  timeout?: number;
  /** Stops waiting early (an {@link AbortedError}); the test's own signal always applies. */
  signal?: AbortSignal;
}

/** Options of `send()`. */
export interface SendOptions {
  /** Mask the text in transcripts and logs. */
  secret?: boolean;
  /** Gives up waiting for the session (behind a running command); the test's own signal always applies. */
  signal?: AbortSignal;
}

/** A shell session of a host with what it needs to report commands. */
export interface SessionBinding {
  host: string;
  context: HostContext;
  commandTimeout: () => number;
}

/** Shared implementation of run/send/expect over one shell session. */
export class SessionHandle {
  constructor(
    readonly name: string,
    protected readonly shell: CommandSession,
    protected readonly binding: SessionBinding,
  ) {}

  /** Whether the shell is running. A closed or lost session reopens on its next command. */
  get alive(): boolean {
    return this.shell.alive;
  }

  /** Runs commands one after the other on this session; state (cwd, env) persists between them. */
  async run(commands: CommandInput | readonly CommandInput[], options?: RunOptions): Promise<RunResult> {
    this.binding.context.fence?.();
    return runCommands(
      { host: this.binding.host, session: this.name, shell: this.shell, context: this.binding.context, commandTimeout: this.binding.commandTimeout() },
      commands,
      options,
    );
  }

  /** Types raw text into the session (include `\n` yourself), for driving REPLs and prompts. */
  async send(text: string, options: SendOptions = {}): Promise<void> {
    this.binding.context.fence?.();
    await this.shell.send(text, { ...options, signal: anySignal(options.signal, this.binding.context.signal()) });
  }

  /** Waits for `pattern` in the session's output since the last expect or command. */
  async expect(pattern: RegExp | string, options: ExpectOptions = {}): Promise<ExpectMatch> {
    const { events } = this.binding.context;
    const base = { host: this.binding.host, session: this.name, pattern: String(pattern) };
    this.binding.context.fence?.();
    try {
      const timeout = options.timeout ?? this.binding.commandTimeout();
      this.binding.context.checkTimeout(this.binding.host, timeout);
      const found = await this.shell.expect(pattern, { timeout, signal: anySignal(options.signal, this.binding.context.signal()) });
      events.emit({ ...base, type: 'expect', time: Date.now(), matched: redact(found.match[0]) });
      return found;
    } catch (error) {
      events.emit({ ...base, type: 'expect', time: Date.now(), error: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  }
}

/**
 * A named persistent shell, from `host.openSession(name)`. Close it with `close()` or
 * `await using`; sessions opened inside a test are closed at its end by the fixtures.
 */
export class HostSession extends SessionHandle implements AsyncDisposable {
  private closed = false;

  constructor(
    name: string,
    private readonly shellSession: ShellSession,
    binding: SessionBinding,
    private readonly deregister: () => void,
  ) {
    super(name, shellSession, binding);
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the shell but keeps the session: its next command opens a new shell. */
  async closeShell(): Promise<void> {
    await this.shellSession.close();
  }

  /** Closes the shell and removes the session from its host. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deregister();
    await this.shellSession.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Owns a host's default session and its named sessions. Opening a name is
 * single-flight: concurrent opens of one name share one shell.
 */
export class SessionManager {
  private readonly named = new Map<string, Promise<HostSession>>();
  private defaultSession: SessionHandle | undefined;
  private defaultShell: ShellSession | undefined;

  constructor(
    private readonly host: string,
    private readonly createShell: (name: string) => ShellSession,
    private readonly binding: SessionBinding,
  ) {}

  /** The default session (used by host.run/send/expect); opened on first command. */
  get default(): SessionHandle {
    if (!this.defaultSession) {
      this.defaultShell = this.createShell('default');
      this.defaultSession = new SessionHandle('default', this.defaultShell, this.binding);
    }
    return this.defaultSession;
  }

  /** Opens the default session's shell now (waiting until it answers), instead of on its first command. */
  async openDefault(signal?: AbortSignal): Promise<void> {
    void this.default;
    await this.defaultShell!.open({ signal });
  }

  /** Opens (or returns the open) session called `name`; its shell is running when this resolves. */
  async open(name: string, signal?: AbortSignal): Promise<HostSession> {
    this.binding.context.fence?.();
    if (!name || name === 'default' || name === 'exec') {
      throw new LabwrightError(`"${name}" cannot name a session.`, { host: this.host, hint: 'Pick another name; "default" and "exec" are reserved.' });
    }
    const existing = this.named.get(name);
    if (existing) {
      const session = await existing.catch(() => undefined);
      if (session && !session.isClosed) return session;
    }
    const opening = (async () => {
      const shell = this.createShell(name);
      const session: HostSession = new HostSession(name, shell, this.binding, () => {
        if (this.named.get(name) === opening) this.named.delete(name);
      });
      await shell.open({ signal: anySignal(signal, this.binding.context.signal()) });
      return session;
    })();
    this.named.set(name, opening);
    opening.catch(() => {
      if (this.named.get(name) === opening) this.named.delete(name);
    });
    return opening;
  }

  /** Closes the named session `name` if it is open. */
  async close(name: string): Promise<void> {
    const pending = this.named.get(name);
    if (!pending) return;
    this.named.delete(name);
    await (await pending.catch(() => undefined))?.close();
  }

  /** Names of the named sessions currently open. */
  get names(): string[] {
    return [...this.named.keys()];
  }

  /** Names of the sessions: the default one once used, and the named ones open. */
  async sessionNames(): Promise<string[]> {
    return [...(this.defaultSession ? ['default'] : []), ...(await this.namedSessions()).map((session) => session.name)];
  }

  /**
   * Closes the shells of the default session and of every named session, keeping the
   * sessions: each opens a new shell on its next command (after a reboot, say).
   */
  async closeShells(): Promise<void> {
    const named = await this.namedSessions();
    await Promise.allSettled([...(this.defaultShell ? [this.defaultShell.close()] : []), ...named.map((session) => session.closeShell())]);
  }

  private async namedSessions(): Promise<HostSession[]> {
    const sessions = await Promise.all([...this.named.values()].map((pending) => pending.catch(() => undefined)));
    return sessions.filter((session): session is HostSession => session !== undefined && !session.isClosed);
  }

  /** Closes the default session and every named session. */
  async closeAll(): Promise<void> {
    const named = [...this.named.values()];
    this.named.clear();
    const closing = named.map(async (pending) => (await pending.catch(() => undefined))?.close());
    if (this.defaultShell) closing.push(this.defaultShell.close());
    await Promise.allSettled(closing);
  }
}
