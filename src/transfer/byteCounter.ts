/** A pass-through stream counting the bytes of streamed transfers (FTP, local copies). */
import { Transform, type TransformCallback } from 'node:stream';

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
