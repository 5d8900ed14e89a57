/** Byte counting and progress reporting for streamed transfers, and local file hashing. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A pass-through stream that reports how many bytes went through it. */
export class ByteCounter extends Transform {
  /** Bytes passed so far. */
  bytes = 0;

  constructor(private readonly onBytes: (count: number) => void = () => {}) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes(chunk.length);
    callback(null, chunk);
  }
}

/**
 * Accumulates bytes of a whole transfer (one file or a tree) and calls `onProgress` at most
 * every `intervalMs`, plus once at the end with the final count, so callbacks see the total.
 */
export class ProgressReporter {
  private done = 0;
  private lastReport = 0;

  constructor(
    /** Bytes the whole transfer moves; may be set once it is known. */
    public total: number,
    private readonly onProgress: ((transferred: number, total: number) => void) | undefined,
    private readonly intervalMs = 100,
  ) {}

  /** Bytes moved so far. */
  get transferred(): number {
    return this.done;
  }

  add(count: number): void {
    this.done += count;
    if (!this.onProgress) return;
    const now = Date.now();
    if (now - this.lastReport >= this.intervalMs) {
      this.lastReport = now;
      this.call();
    }
  }

  /** Reports the final count (always, so a completed transfer reports its total). */
  finish(): void {
    this.call();
  }

  private call(): void {
    try {
      this.onProgress?.(this.done, this.total);
    } catch {
      // A throwing progress callback must not break the transfer.
    }
  }
}

/** SHA-256 of a local file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}
