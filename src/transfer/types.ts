/** Types shared by every transfer method. */
import type { TransferMethod, VerifyMode } from '../config/schema.js';

/** Options of `put()` / `get()`. */
export interface TransferOptions {
  /** Transfer method for this call; default: the host's `transfer` setting. */
  method?: TransferMethod;
  /** Verification after the transfer; default: the method's `verify` option (`size`). */
  verify?: VerifyMode;
  /** Called as bytes move: bytes done so far and total bytes (when known). */
  onProgress?: (transferred: number, total: number) => void;
  /** File mode for created files (octal number, e.g. 0o644); default: keep the source's. */
  mode?: number;
}

/** What a transfer did. */
export interface TransferResult {
  direction: 'put' | 'get';
  method: TransferMethod | 'copy';
  /** Local path (source of a put, destination of a get). */
  local: string;
  /** Remote path (destination of a put, source of a get). */
  remote: string;
  /** Files transferred (1 for a single file). */
  files: number;
  /** Total bytes transferred. */
  bytes: number;
  durationMs: number;
  /** How the result was verified. */
  verified: VerifyMode;
}
