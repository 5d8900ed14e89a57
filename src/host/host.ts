/** What every host offers: persistent shells, stateless exec, sessions, transfers. */
import type { HostConfig } from '../config/defineLab.js';
import type { Lease } from '../lease/client.js';
import { type ExpectMatch, type SessionObserver, ShellSession, type ShellSessionOptions } from '../session/shellSession.js';
import { cleanText } from '../session/text.js';
import type { ShellTransport } from '../session/transport.js';
import type { TransferOptions, TransferResult } from '../transfer/types.js';
import { anySignal } from '../util/time.js';
import { type CommandInput, reportCommand, type RunOptions } from './commands.js';
import type { HostContext } from './events.js';
import { type ExpectOptions, type HostSession, type SendOptions, SessionManager } from './hostSession.js';
import { HostLifecycle } from './lifecycle.js';
import type { CommandOrigin, CommandResult, RunResult } from './results.js';

/** Options of `exec()`: a stateless command on its own channel or process. */
export interface ExecOptions {
  /** Bound in ms; on expiry the command is ended and a timed-out result returned. Default: the host's command timeout. */
  timeout?: number;
  /** Environment variables for the command. */
  env?: Record<string, string>;
  /** Data written to the command's stdin, then closed. */
  stdin?: string | Buffer;
  /** Working directory; a directory that does not exist gives an error result (the command does not run). */
  cwd?: string;
  /** Run on a pseudo-terminal: stderr is then merged into the output, and programs see a terminal. */
  pty?: boolean;
  /** Ends the command early (interrupted, its channel or process closed); the test's own signal always applies. */
  signal?: AbortSignal;
}

/** What a host's exec implementation receives: `exec()`'s options with the timeout and signal in effect. */
export interface ExecRequest extends Omit<ExecOptions, 'timeout' | 'signal'> {
  timeout: number;
  signal: AbortSignal | undefined;
  /** Each line of stdout as it arrives (for live transcripts). */
  onLine: (line: string) => void;
}

/** Built-in command timeout when neither call, host, fixture nor lab sets one. */
export const DEFAULT_COMMAND_TIMEOUT = 30_000;

/**
 * A lab host. `run`, `send` and `expect` use the host's default persistent shell, where
 * state such as `cd` and `export` persists; commands on it are serialised. `exec` runs
 * stateless commands concurrently. `openSession(name)` gives further parallel shells.
 */
export abstract class Host implements AsyncDisposable {
  /** Name of the host in the lab. */
  readonly name: string;
  readonly config: HostConfig;
  /**
   * The lab's context, with every call's signal also firing when the host goes away under
   * it (a reboot, a power off): such calls end with that reason.
   */
  protected readonly context: HostContext;
  protected readonly sessions: SessionManager;
  /** Whether the host can be used now (remote hosts reboot and power off; the runner never does). */
  protected readonly lifecycle: HostLifecycle;

  constructor(config: HostConfig, context: HostContext) {
    this.name = config.name;
    this.config = config;
    const lifecycle = new HostLifecycle(config.name);
    this.lifecycle = lifecycle;
    this.context = {
      ...context,
      // Calls on this host also end when the host goes away under them (a reboot, a power off).
      signal: () => anySignal(context.signal(), lifecycle.signal),
      // Every step on this host first checks its leases (fencing) ...
      step: (title, body) =>
        context.step(title, async () => {
          this.assertLeaseHeld();
          return body();
        }),
      // ... and every call, also that the host is not rebooting or powered off (it fails at once).
      fence: () => {
        this.assertLeaseHeld();
        lifecycle.assertUsable();
      },
    };
    this.sessions = new SessionManager(this.name, (name) => this.createShell(name), {
      host: this.name,
      context: this.context,
      commandTimeout: () => this.commandTimeout,
    });
  }

  // --- leases (src/lease/): a leased host refuses calls once its lease is lost ---
  private readonly leases = new Set<Lease>();

  /** Ties this host to `lease` until the returned function is called: each call on the host first checks the lease is still held. */
  attachLease(lease: Lease): () => void {
    this.leases.add(lease);
    return () => this.leases.delete(lease);
  }

  /** Throws a LeaseError (kind `lost`) when a lease this host is tied to is no longer held. */
  assertLeaseHeld(): void {
    for (const lease of this.leases) lease.assertHeld(this.name);
  }

  /**
   * Fencing token of the lease this host is held under (the latest, if several), or undefined
   * when it is not leased. Larger than every earlier holder's: hand it to whatever the device
   * writes to, so a write of a holder that lost its lease can be recognised and refused.
   */
  get leaseToken(): number | undefined {
    let token: number | undefined;
    for (const lease of this.leases) token = lease.tokenOf(this.name);
    return token;
  }
  // --- end leases ---

  /** `local` or `remote`. */
  abstract readonly kind: 'local' | 'remote';

  /** Default timeout (ms) of commands on this host. */
  get commandTimeout(): number {
    return this.config.commandTimeout ?? this.context.defaultCommandTimeout();
  }

  /** Transport carrying shells of this host. */
  protected abstract shellTransport(sessionName: string): ShellTransport;

  /**
   * A shell session on `transport` (default: this host's) reporting to the lab's events;
   * `exclusive` gates it (consoles); `onLifecycle` also hears it open, drop and close.
   */
  protected createShell(
    name: string,
    transport = this.shellTransport(name),
    exclusive?: ShellSessionOptions['exclusive'],
    onLifecycle?: SessionObserver['lifecycle'],
  ): ShellSession {
    const { events } = this.context;
    const host = this.name;
    return new ShellSession({
      transport,
      name,
      exclusive,
      shell: this.config.shell,
      observer: {
        idleLine: (line) => events.emit({ type: 'output', time: Date.now(), host, session: name, line }),
        sent: (text, secret) => events.emit({ type: 'sent', time: Date.now(), host, session: name, text, secret }),
        lifecycle: (event, detail) => {
          events.emit({ type: 'session', time: Date.now(), host, session: name, protocol: transport.protocol, event, ...(detail ? { detail } : {}) });
          onLifecycle?.(event, detail);
        },
      },
    });
  }

  /**
   * Runs one command or a list on the default shell, one after the other. Never throws for
   * a command's own failure: check the result (`ok`, `status`, `exitCode`) or use the
   * `toSucceed()` matcher. Throws when the host cannot be reached.
   */
  run(commands: CommandInput | readonly CommandInput[], options?: RunOptions): Promise<RunResult> {
    return this.sessions.default.run(commands, options);
  }

  /** Types raw text into the default shell (include `\n` yourself). */
  send(text: string, options?: SendOptions): Promise<void> {
    return this.sessions.default.send(text, options);
  }

  /** Waits for `pattern` in the default shell's output since the last expect or command. */
  expect(pattern: RegExp | string, options?: ExpectOptions): Promise<ExpectMatch> {
    return this.sessions.default.expect(pattern, options);
  }

  /** Opens a named persistent shell, parallel to the default one. One per name: opening an open name returns it. */
  openSession(name: string, options: { signal?: AbortSignal } = {}): Promise<HostSession> {
    return this.sessions.open(name, options.signal);
  }

  /** Closes the named session `name` if it is open. */
  async closeSession(name: string): Promise<void> {
    await this.sessions.close(name);
  }

  /**
   * Runs a stateless command on its own channel (SSH), pooled shell (telnet) or process
   * (local); concurrent calls run in parallel. Never throws for the command's own failure.
   */
  async exec(command: string, options: ExecOptions = {}): Promise<CommandResult> {
    this.context.fence?.();
    const timeout = options.timeout ?? this.commandTimeout;
    this.context.checkTimeout(this.name, timeout);
    const { signal: _callSignal, timeout: _timeout, ...rest } = options;
    const signal = anySignal(options.signal, this.context.signal());
    const where = { host: this.name, session: 'exec', protocol: this.execProtocol };
    return reportCommand(this.context, where, command, (onLine) =>
      this.execute(command, { ...rest, timeout, signal, onLine: (line) => onLine(cleanText(line)) }),
    );
  }

  /** Protocol that carries `exec` on this host. */
  protected abstract get execProtocol(): CommandOrigin;

  /** Runs one exec on this host's kind of channel. */
  protected abstract execute(command: string, request: ExecRequest): Promise<CommandResult>;

  /** Copies a local file or directory to the host. */
  abstract put(localPath: string, remotePath: string, options?: TransferOptions): Promise<TransferResult>;

  /** Copies a file or directory from the host to the runner. */
  abstract get(remotePath: string, localPath: string, options?: TransferOptions): Promise<TransferResult>;

  /** Closes every session and connection of this host. The host can be used again afterwards. */
  async close(): Promise<void> {
    await this.sessions.closeAll();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
