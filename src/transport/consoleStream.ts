/**
 * Console byte streams: what a serial console looks like to labwright, whatever carries
 * it (raw TCP to ser2net or QEMU, telnet to a terminal server, a local serial device).
 * A console has no channels and no sessions: one stream, bytes both ways.
 */
import type { Duplex } from 'node:stream';

/** Receives what a console prints, and its end. */
export interface ConsoleStreamListener {
  /** Bytes the console printed, in order. */
  data(bytes: Buffer): void;
  /** The stream ended; `error` when it failed rather than closed. Called once. */
  closed(error?: Error): void;
}

/** An open console connection. */
export interface ConsoleStream {
  /** `tcp 127.0.0.1:4555`, `telnet ts1:7001 via bastion`, `serial /dev/ttyUSB0 115200 8N1`: for messages. */
  readonly description: string;
  /** Whether the stream has ended. */
  readonly closed: boolean;
  /** Starts delivering data and closure; data that arrived earlier is delivered first. */
  attach(listener: ConsoleStreamListener): void;
  /** Sends bytes to the console. Throws when the stream is closed. */
  write(data: string | Buffer): void;
  /** Sends a serial BREAK where the carrier can (serial device, RFC 2217); false where it cannot. */
  sendBreak(): Promise<boolean>;
  /** Closes the stream, bounded; idempotent. */
  close(): Promise<void>;
}

/**
 * Early data and close bookkeeping shared by every console stream: a listener attached
 * late still gets everything, in order, and closure exactly once.
 */
export class ConsoleStreamBase {
  private listener: ConsoleStreamListener | undefined;
  private early: Buffer[] = [];
  private ended = false;
  private endError: Error | undefined;

  get closed(): boolean {
    return this.ended;
  }

  attach(listener: ConsoleStreamListener): void {
    this.listener = listener;
    const early = this.early;
    this.early = [];
    for (const chunk of early) listener.data(chunk);
    if (this.ended) listener.closed(this.endError);
  }

  /** Hands received bytes to the listener (or keeps them until one attaches). */
  protected deliver(bytes: Buffer): void {
    if (this.listener) this.listener.data(bytes);
    else this.early.push(Buffer.from(bytes));
  }

  /** Records the end; the listener hears of it once. */
  protected finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    this.listener?.closed(error);
  }
}

/** A console on a raw TCP stream (ser2net raw mode, terminal servers in raw mode, QEMU `-serial tcp:`). */
export class RawConsoleStream extends ConsoleStreamBase implements ConsoleStream {
  private error: Error | undefined;

  constructor(
    private readonly stream: Duplex,
    readonly description: string,
  ) {
    super();
    stream.on('data', (chunk: Buffer) => this.deliver(chunk));
    stream.on('error', (error: Error) => (this.error ??= error));
    stream.on('end', () => this.finish(this.error));
    stream.on('close', () => this.finish(this.error));
  }

  write(data: string | Buffer): void {
    if (this.closed || this.stream.destroyed || this.stream.writableEnded) throw new Error('the console connection is closed');
    this.stream.write(data);
  }

  /** A raw TCP console has no out-of-band channel for a BREAK. */
  async sendBreak(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {
    this.stream.destroy();
    this.finish();
  }
}
