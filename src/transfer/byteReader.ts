/** Reading a byte protocol (scp) from a stream: bytes, lines and counted payloads, each wait bounded. */
import type { Readable } from 'node:stream';

export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(stream: Readable) {
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
  }

  private async waitFor(bytes: number, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.length < bytes) {
      if (this.ended) throw new Error(`${this.ended.message} while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
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

  async byte(timeoutMs: number): Promise<number> {
    await this.waitFor(1, timeoutMs, 'a reply');
    return this.take(1)[0]!;
  }

  /** A line without its newline. */
  async line(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = Buffer.concat(this.chunks);
      const index = all.indexOf(0x0a);
      if (index !== -1) {
        this.chunks = [all];
        return this.take(index + 1).subarray(0, index).toString('utf8');
      }
      await this.waitFor(this.length + 1, Math.max(1, deadline - Date.now()), 'a protocol line');
    }
  }

  /** Passes exactly `count` bytes to `sink` as they arrive; `idleMs` bounds each wait. */
  async payload(count: number, idleMs: number, sink: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    let left = count;
    while (left > 0) {
      if (this.length === 0) await this.waitFor(1, idleMs, 'file data');
      const chunk = this.take(Math.min(left, this.length));
      left -= chunk.length;
      await sink(chunk);
    }
  }
}
