/**
 * Shells over SSH: a session channel with a pty (term type and size from the config, echo
 * off from the start), the login shell or `shell.command`. Interrupts are Ctrl+C typed into
 * the pty (a signal request would reach the shell, not its foreground job), then Ctrl+\.
 * The channel holds a slot of the connection's channel budget while open.
 */
import type { Client as SshClient, ClientChannel } from 'ssh2';

import { sendSignal } from '../exec/sshExec.js';
import type { ConnectionManager } from '../transport/connectionManager.js';
import { endSessionChannel } from '../transport/sessionChannel.js';
import { SessionClosedError } from '../util/errors.js';
import type { ShellChannel, ShellSink, ShellTransport } from './transport.js';

/** What an SSH shell needs. */
export interface SshShellOptions {
  host: string;
  /** Session name, for budget messages. */
  session: string;
  connections: ConnectionManager;
  termType: string;
  cols: number;
  rows: number;
  env: Record<string, string>;
  /** Program to run on the pty instead of the login shell. */
  command?: string | undefined;
  /** Bound on waiting for a channel slot and opening the channel. */
  openTimeout: number;
}

/** A shell channel whose output is buffered from inside ssh2's callback until the session takes it. */
interface OpenedShell {
  channel: ClientChannel;
  early: { chunks: Buffer[]; closed: boolean; exitCode: number | null; signal: string | undefined };
}

function openShellChannel(client: SshClient, options: SshShellOptions): Promise<OpenedShell> {
  const pty = { term: options.termType, cols: options.cols, rows: options.rows, modes: { ECHO: 0 as const } };
  const env = Object.keys(options.env).length > 0 ? { env: options.env } : {};
  return new Promise((resolve, reject) => {
    const done = (error: Error | undefined, channel: ClientChannel) => {
      if (error) return reject(error);
      // Record from the first packet: a shell that exits at once must not go unnoticed.
      const early: OpenedShell['early'] = { chunks: [], closed: false, exitCode: null, signal: undefined };
      channel.on('data', (chunk: Buffer) => early.chunks.push(chunk));
      channel.stderr.on('data', (chunk: Buffer) => early.chunks.push(chunk));
      channel.on('exit', (code: number | null, signalName?: string) => {
        early.exitCode = code;
        early.signal = signalName;
      });
      channel.once('close', () => (early.closed = true));
      channel.on('error', () => {});
      resolve({ channel, early });
    };
    // ssh2 throws synchronously when not connected; SshConnection.openChannel classifies it.
    if (options.command) client.exec(options.command, { pty, ...env }, done);
    else client.shell(pty, env, done);
  });
}

export class SshShellTransport implements ShellTransport {
  readonly protocol = 'ssh' as const;
  readonly pty = true;
  readonly newline = '\n';
  readonly host: string;

  constructor(private readonly options: SshShellOptions) {
    this.host = options.host;
  }

  async open(sink: ShellSink): Promise<ShellChannel> {
    const connection = await this.options.connections.ssh();
    const held = await connection.openChannel(
      { kind: 'shell', name: this.options.session },
      this.options.openTimeout,
      (client) => openShellChannel(client, this.options),
      (opened) => opened.channel,
    );
    const { channel, early } = held;
    // Hand over from the early recorder to the session.
    channel.removeAllListeners('data');
    channel.stderr.removeAllListeners('data');
    for (const chunk of early.chunks.splice(0)) sink.data(chunk);
    channel.on('data', (chunk: Buffer) => sink.data(chunk));
    channel.stderr.on('data', (chunk: Buffer) => sink.data(chunk));
    let closed = false;
    const stopWatching = connection.onLost((error) => {
      if (!closed) sink.closed(error);
    });
    const onClose = () => {
      closed = true;
      stopWatching();
      const lost = connection.lostReason;
      sink.closed(
        lost ??
          new Error(
            early.signal
              ? `the remote shell was killed by ${early.signal}`
              : early.exitCode !== null
                ? `the remote shell exited with code ${early.exitCode}`
                : 'the shell channel closed',
          ),
      );
    };
    if (early.closed) onClose();
    else channel.once('close', onClose);
    return new SshShellChannel(channel, this.host, () => closed);
  }
}

class SshShellChannel implements ShellChannel {
  constructor(
    private readonly channel: ClientChannel,
    private readonly host: string,
    private readonly isClosed: () => boolean,
  ) {}

  write(data: string | Buffer): void {
    // ssh2 never calls back for writes to a closed channel: refuse them up front.
    if (this.isClosed() || this.channel.destroyed || !this.channel.writable) {
      throw new SessionClosedError('the shell channel is closed.', { host: this.host, protocol: 'ssh', hint: 'The next command opens a new shell.' });
    }
    this.channel.write(data);
  }

  interrupt(attempt: number): boolean {
    if (this.isClosed()) return false;
    // Ctrl+C twice (some programs want a second), then Ctrl+\ (SIGQUIT) for programs that trap SIGINT.
    this.channel.write(attempt < 2 ? '\x03' : '\x1c');
    return attempt < 2;
  }

  /** Hangs the shell up (SIGHUP, end of input) and lets it exit before the channel closes (see endSessionChannel). */
  async close(): Promise<void> {
    if (this.isClosed()) return;
    await endSessionChannel(this.channel, { graceMs: 1_000, beforeEnd: () => sendSignal(this.channel, 'HUP') });
  }
}
