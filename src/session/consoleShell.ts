/**
 * Shell mode on a serial console: log in on the console (or find the shell still logged
 * in), then hand the stream to the ShellSession core (markers, exit codes, expects,
 * timeouts with Ctrl+C recovery). Unlike telnet, closing the channel does not end the
 * shell on the board: the console stays connected, and a shell left logged in is found
 * again by the next open (the login probe answers at once).
 *
 * Console noise handled here: kernel messages are taken out of the byte stream (see
 * kernelLines.ts); terminal queries are answered by the connection.
 */
import type { ConsoleOptions } from '../config/schema.js';
import type { ConsoleConnection, ConsoleConsumer } from '../transport/consoleConnection.js';
import { SessionClosedError } from '../util/errors.js';
import { registerSecret } from '../util/secrets.js';
import { KernelLineFilter } from './kernelLines.js';
import { telnetLogin } from './telnetLogin.js';
import { CTRL_BACKSLASH, CTRL_C, type ShellChannel, type ShellSink, type ShellTransport } from './transport.js';

/** What a {@link ConsoleShellTransport} needs. */
export interface ConsoleShellOptions {
  /** Lab host name (errors). */
  host: string;
  connection: ConsoleConnection;
  console: ConsoleOptions;
  user: string;
  password?: string | undefined;
  /** Receives kernel lines taken out of the shell's output. */
  onKernelLine?: (line: string) => void;
}

/** After the wake, a silent console this long (ms) is probed for a logged-in shell. */
const QUIET_PROBE_MS = 300;

/** Opens shell mode on a host's console. */
export class ConsoleShellTransport implements ShellTransport {
  readonly protocol = 'console' as const;
  readonly host: string;
  readonly pty = true;
  readonly newline: string;
  /** The connection answers ash's cursor queries; see ShellTransport.syncAfterSetup. */
  readonly syncAfterSetup = true;

  get maxOpenMs(): number {
    return this.options.console.connectTimeout + this.options.console.loginTimeout;
  }

  constructor(private readonly options: ConsoleShellOptions) {
    this.host = options.host;
    this.newline = options.console.newline;
    registerSecret(options.password);
  }

  async open(sink: ShellSink): Promise<ShellChannel> {
    const { connection, console: opts } = this.options;
    const stream = await connection.ensure();
    const relay = new ShellRelay(connection, this.options.onKernelLine, opts.kernelMessages);
    connection.use(relay, 'shell mode');
    let rest: Buffer;
    try {
      rest = await telnetLogin(
        { attach: (listener) => relay.toLogin(listener), write: (data) => connection.writeNow(data) },
        {
          host: this.host,
          endpoint: stream.description,
          user: this.options.user,
          password: this.options.password,
          options: opts,
          newline: this.newline,
          protocol: 'console',
          wake: opts.wake,
          probeWhenQuietMs: QUIET_PROBE_MS,
        },
      );
    } catch (error) {
      connection.drop(relay);
      throw error;
    }
    relay.toShell(sink, rest);
    return relay;
  }
}

/** Routes the console's bytes to the login dialogue, then to the shell session; the shell's channel. */
class ShellRelay implements ConsoleConsumer, ShellChannel {
  private target: { data(bytes: Buffer): void; closed(error?: Error): void } | undefined;
  private readonly filter: KernelLineFilter | undefined;
  private ended = false;

  constructor(
    private readonly connection: ConsoleConnection,
    onKernelLine: ((line: string) => void) | undefined,
    filterKernel: boolean,
  ) {
    this.filter = filterKernel ? new KernelLineFilter((line) => onKernelLine?.(line)) : undefined;
  }

  toLogin(listener: { data(bytes: Buffer): void; closed(error?: Error): void }): void {
    this.target = listener;
  }

  toShell(sink: ShellSink, rest: Buffer): void {
    this.target = { data: (bytes) => sink.data(bytes), closed: (error) => sink.closed(error) };
    if (rest.length > 0) this.data(rest);
  }

  // ---- ConsoleConsumer ----

  data(bytes: Buffer): void {
    if (this.ended) return;
    const passed = this.filter ? this.filter.push(bytes) : bytes;
    if (passed.length > 0) this.target?.data(passed);
  }

  closed(error: Error): void {
    this.end(error);
  }

  displaced(by: string): void {
    this.end(
      new SessionClosedError(`the console was taken over by ${by}`, {
        host: undefined,
        protocol: 'console',
        unprefixed: true,
        hint: 'The shell is found again (or logged in anew) on the next shell command.',
      }),
    );
  }

  private end(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.connection.drop(this);
    this.target?.closed(error);
  }

  // ---- ShellChannel ----

  write(data: string | Buffer): void {
    if (this.ended) throw new Error('the console shell was closed');
    this.connection.writeNow(data);
  }

  /** Ctrl+C twice (the first may meet a program that ignores it once), then Ctrl+\. */
  interrupt(attempt: number): boolean {
    if (this.ended) return false;
    // What the kernel filter held back is output after all: the command is being given up.
    const held = this.filter?.flush();
    if (held && held.length > 0) this.target?.data(held);
    this.connection.writeNow(attempt < 2 ? CTRL_C : CTRL_BACKSLASH);
    return attempt < 2;
  }

  /** Stops listening; the shell stays logged in on the board. */
  async close(): Promise<void> {
    this.ended = true;
    this.connection.drop(this);
  }
}
