/**
 * An interactive terminal on a remote host, as `ssh host` gives it: a shell (or a command)
 * on a pty of the caller's terminal type and size, raw bytes both ways, window size
 * changes passed on, and the remote exit status at the end. Goes through the host's
 * connection (so through hops) and holds one of its session slots while open.
 */
import type { ClientChannel } from 'ssh2';

import { LabwrightError } from '../util/errors.js';
import type { RemoteHost } from './remoteHost.js';

/** What the terminal looks like. */
export interface TerminalOptions {
  /** Terminal type (`$TERM`), default `xterm-256color`. */
  term?: string;
  cols: number;
  rows: number;
  /** A command to run on the pty instead of the login shell. */
  command?: string;
  /** Bound on getting a session slot and opening the channel (ms). Default: the host's `shell.openTimeout`. */
  openTimeout?: number;
}

/** How the remote side ended. */
export interface TerminalExit {
  /** Exit status, or null when the program was killed or the connection dropped. */
  exitCode: number | null;
  /** Signal name without SIG, when killed by one. */
  signal: string | undefined;
}

/** An open interactive terminal. */
export interface Terminal {
  /** Bytes typed by the user. */
  write(data: Buffer | string): void;
  /** Output of the remote program (stdout and, on a pty, stderr). */
  onData(listener: (data: Buffer) => void): void;
  /** Sends end-of-file (the local input ended). */
  end(): void;
  /** Passes a window size change on. */
  resize(cols: number, rows: number): void;
  /** Resolves when the remote side is gone. */
  readonly exited: Promise<TerminalExit>;
  /** Closes the channel. */
  close(): void;
}

/** Opens an interactive pty session on an SSH host. */
export async function openTerminal(host: RemoteHost, options: TerminalOptions): Promise<Terminal> {
  const { config } = host;
  if (config.term !== 'ssh') {
    throw new LabwrightError(`an interactive terminal needs SSH; this host's shells use ${config.term}.`, {
      host: host.name,
      protocol: config.term,
      hint:
        config.term === 'telnet'
          ? `Use a telnet client (telnet ${config.address} ${config.telnet.port}) for an interactive session.`
          : 'Open its serial console with a terminal program, or use host.console in a test.',
    });
  }
  const pty = { term: options.term ?? 'xterm-256color', cols: options.cols, rows: options.rows };
  const env = Object.keys(config.ssh.env).length > 0 ? { env: config.ssh.env } : {};
  const connection = await host.connections.ssh();
  const exit: TerminalExit = { exitCode: null, signal: undefined };
  const held = await connection.openChannel(
    { kind: 'shell', name: 'terminal' },
    options.openTimeout ?? config.shell.openTimeout,
    (client) =>
      new Promise<{ channel: ClientChannel }>((resolve, reject) => {
        const done = (error: Error | undefined, channel: ClientChannel) => {
          if (error) return reject(error);
          // Listen inside the callback: a quick command's exit status arrives with the confirmation.
          channel.on('exit', (code: number | null, signal?: string) => {
            exit.exitCode = typeof code === 'number' ? code : null;
            exit.signal = signal ?? undefined;
          });
          channel.on('error', () => {});
          channel.pause();
          resolve({ channel });
        };
        // ssh2 throws synchronously when not connected; openChannel classifies it.
        if (options.command) client.exec(options.command, { pty, ...env }, done);
        else client.shell(pty, env, done);
      }),
    (opened) => opened.channel,
  );
  const { channel } = held;
  const exited = new Promise<TerminalExit>((resolve) => channel.once('close', () => resolve(exit)));
  return {
    write: (data) => {
      if (channel.writable) channel.write(data);
    },
    onData: (listener) => {
      channel.on('data', listener);
      channel.stderr.on('data', listener);
      channel.resume();
    },
    end: () => {
      if (channel.writable) channel.end();
    },
    resize: (cols, rows) => channel.setWindow(rows, cols, 0, 0),
    exited,
    close: () => channel.close(),
  };
}
