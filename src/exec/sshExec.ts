/**
 * One command on its own SSH exec channel: stdout and stderr apart, exit code or exit
 * signal, env, optional pty, stdin, and a timeout that ends the remote process (signal
 * without a pty, Ctrl+C with one) and returns what was received.
 */
import type { Client as SshClient, ClientChannel } from 'ssh2';

/** Options of one exec. */
export interface ChannelExecOptions {
  timeout: number;
  env?: Record<string, string> | undefined;
  stdin?: string | Buffer | undefined;
  pty?: { term: string; cols: number; rows: number } | undefined;
  onStdout?: ((chunk: Buffer) => void) | undefined;
  /** Ends the command like its timeout does (INT, KILL, close). */
  signal?: AbortSignal | undefined;
  /**
   * Told each time the command is signalled to stop (`INT`, then `KILL`), so the caller can
   * reach processes a signal request does not (a shell that forked the command).
   */
  onStop?: ((signal: 'INT' | 'KILL') => void) | undefined;
}

/** What happened to one exec. */
export interface ChannelExecOutcome {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number | null;
  /** Signal name without SIG (`TERM`), when the process was killed by one. */
  signal: string | undefined;
  timedOut: boolean;
  /** Whether the caller's signal ended the command. */
  aborted: boolean;
  /** The channel closed without an exit status and not through our timeout: the connection likely broke. */
  lost: boolean;
  durationMs: number;
}

/** Grace after each step of ending a timed-out command. */
const KILL_GRACE_MS = 1_000;

/** What arrived on an exec channel; recording starts inside ssh2's callback. */
export interface ExecRecorder {
  stdout: Buffer[];
  stderr: Buffer[];
  exitCode: number | null;
  signal: string | undefined;
  gotExit: boolean;
  closed: boolean;
}

/** An exec channel with its recorder. */
export interface OpenedExec {
  channel: ClientChannel;
  recorder: ExecRecorder;
}

/**
 * Starts recording a channel. Must run synchronously in ssh2's callback: for a quick
 * command ssh2 parses the exit status in the same chunk as the confirmation, before any
 * later listener could see it.
 */
export function record(channel: ClientChannel, onStdout?: (chunk: Buffer) => void): ExecRecorder {
  const recorder: ExecRecorder = { stdout: [], stderr: [], exitCode: null, signal: undefined, gotExit: false, closed: false };
  channel.once('close', () => (recorder.closed = true));
  channel.on('data', (chunk: Buffer) => {
    recorder.stdout.push(chunk);
    onStdout?.(chunk);
  });
  channel.stderr.on('data', (chunk: Buffer) => recorder.stderr.push(chunk));
  channel.on('exit', (code: number | null, signalName?: string) => {
    recorder.gotExit = true;
    if (typeof code === 'number') recorder.exitCode = code;
    if (signalName) recorder.signal = signalName.replace(/^SIG/, '');
  });
  channel.on('error', () => {
    // Reported through 'close' without exit status.
  });
  return recorder;
}

/** Opens an exec channel; rejects with ssh2's error (e.g. a channel open failure). */
export function openExec(client: SshClient, command: string, options: ChannelExecOptions): Promise<OpenedExec> {
  return new Promise((resolve, reject) => {
    try {
      client.exec(
        command,
        {
          ...(options.env && Object.keys(options.env).length > 0 ? { env: options.env } : {}),
          ...(options.pty ? { pty: { term: options.pty.term, cols: options.pty.cols, rows: options.pty.rows, modes: { ECHO: 0 as const } } } : {}),
        },
        (error, channel) => (error ? reject(error) : resolve({ channel, recorder: record(channel, options.onStdout) })),
      );
    } catch (error) {
      // ssh2 throws synchronously when the connection is not (or no longer) up;
      // SshConnection.openChannel classifies it.
      reject(error);
    }
  });
}

interface ChannelInternals {
  outgoing?: { state?: string; id?: number };
  _client?: { _protocol?: { signal(id: number, name: string): void } };
}

/**
 * Sends a signal request. ssh2's channel.signal() drops it silently once stdin was closed
 * (it requires a writable channel), but the request is valid until the channel closes,
 * so after EOF it goes through the same protocol call directly (ssh2 1.17 Channel.js).
 */
export function sendSignal(channel: ClientChannel, name: string): void {
  try {
    if (channel.writable) return void channel.signal(name);
    const internals = channel as unknown as ChannelInternals;
    const { outgoing } = internals;
    if ((outgoing?.state === 'open' || outgoing?.state === 'eof') && outgoing.id !== undefined) internals._client?._protocol?.signal(outgoing.id, name);
  } catch {
    // The channel is closing anyway.
  }
}

/** Waits for an opened exec until it exits, its channel closes, or the timeout ends it. */
export function runOnChannel({ channel, recorder }: OpenedExec, options: ChannelExecOptions): Promise<ChannelExecOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    let timedOut = false;
    let aborted = false;
    let finished = false;
    const timers: NodeJS.Timeout[] = [];
    const { signal } = options;
    const finish = () => {
      if (finished) return;
      finished = true;
      timers.forEach(clearTimeout);
      signal?.removeEventListener('abort', onAbort);
      const stopped = timedOut || aborted;
      resolve({
        stdout: Buffer.concat(recorder.stdout),
        stderr: Buffer.concat(recorder.stderr),
        exitCode: stopped ? null : recorder.exitCode,
        signal: recorder.signal,
        timedOut,
        aborted,
        lost: !recorder.gotExit && !stopped,
        durationMs: Date.now() - started,
      });
    };
    if (recorder.closed) return finish();
    channel.once('close', finish);

    if (options.stdin !== undefined) channel.end(options.stdin);
    else channel.end();

    // With a pty Ctrl+C reaches the foreground job; without one a signal request does
    // (OpenSSH 7.9+). Then KILL, then the channel is closed, then we stop waiting: a
    // server that honours none of these must not hang the caller.
    function stop(): void {
      if (finished) return;
      try {
        if (options.pty && channel.writable) channel.write('\x03');
      } catch {}
      sendSignal(channel, 'INT');
      options.onStop?.('INT');
      timers.push(
        setTimeout(() => {
          sendSignal(channel, 'KILL');
          options.onStop?.('KILL');
          timers.push(
            setTimeout(() => {
              channel.close();
              timers.push(setTimeout(finish, KILL_GRACE_MS * 3));
            }, KILL_GRACE_MS),
          );
        }, KILL_GRACE_MS),
      );
    }
    function onAbort(): void {
      if (timedOut) return;
      aborted = true;
      stop();
    }
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    timers.push(
      setTimeout(
        () => {
          if (aborted) return;
          timedOut = true;
          stop();
        },
        Math.max(1, options.timeout),
      ),
    );
  });
}
