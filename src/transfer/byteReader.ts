/**
 * Reading a byte protocol (scp) from a stream: bytes, lines and counted payloads. Waits end
 * when data arrives, when the stream ends, or when `signal` aborts (the transfer's guard
 * bounds them: idle timeout, lost connection, the caller's abort).
 */
import type { Readable } from 'node:stream';

export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    stream: Readable,
    private readonly signal: AbortSignal,
  ) {
    stream.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
      this.wake?.();
    });
    const end = () => {
      this.ended ??= new Error('the channel closed');
      this.wake?.();
    };
    stream.on('end', end);
    stream.on('close', end);
    signal.addEventListener('abort', () => this.wake?.(), { once: true });
  }

  private async waitFor(bytes: number, what: string): Promise<void> {
    while (this.length < bytes) {
      if (this.signal.aborted) throw this.signal.reason;
      if (this.ended) throw new Error(`${this.ended.message} while waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.wake = () => {
          this.wake = undefined;
          resolve();
        };
      });
    }
  }

  private take(count: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const taken = all.subarray(0, count);
    const rest = all.subarray(count);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return taken;
  }

  async byte(): Promise<number> {
    await this.waitFor(1, 'a reply');
    return this.take(1)[0]!;
  }

  /** A line without its newline. */
  async line(): Promise<string> {
    for (;;) {
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      const index = all.indexOf(0x0a);
      if (index !== -1) {
        this.chunks = [all];
        return this.take(index + 1)
          .subarray(0, index)
          .toString('utf8');
      }
      await this.waitFor(this.length + 1, 'a protocol line');
    }
  }

  /** Passes exactly `count` bytes to `sink` as they arrive. */
  async payload(count: number, sink: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    let left = count;
    while (left > 0) {
      if (this.length === 0) await this.waitFor(1, 'file data');
      const chunk = this.take(Math.min(left, this.length));
      left -= chunk.length;
      await sink(chunk);
    }
  }
}
