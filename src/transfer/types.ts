/** Types shared by every transfer method. */
import type { TransferMethod, VerifyMode } from '../config/schema.js';

/** Options of `put()` / `get()`; every host kind and every method honours each of them. */
export interface TransferOptions {
  /** Transfer method for this call; default: the host's `transfer` setting. Remote hosts only (the local host copies). */
  method?: TransferMethod;
  /** Verification after the transfer, before the file takes its final name; default: the method's `verify` option (`size`). */
  verify?: VerifyMode;
  /** Called as bytes move: bytes done so far and total bytes (when known). The last call reports the total. */
  onProgress?: (transferred: number, total: number) => void;
  /** Permission bits for created files (e.g. 0o644); default: the source file's permission bits. */
  mode?: number;
  /**
   * Milliseconds without progress (no byte moved, no step finished) after which the transfer
   * fails with a `stalled` error; default: the method's `idleTimeout` option (60 s).
   */
  timeout?: number;
  /** Aborts the transfer: it fails with an `aborted` error and leaves no file under the destination's name. */
  signal?: AbortSignal;
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
  /** Why `verified` differs from what was asked, or what the method could not do (FTP without SITE CHMOD). */
  note?: string;
}

/** Result of a command a transfer method ran on the remote host (mkdir, sha256sum, nc). */
export interface RemoteCommandResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs helper commands on the remote host for transfer methods: over SSH `exec`, or a
 * telnet session on telnet-only devices. Commands are POSIX sh.
 */
export interface RemoteRunner {
  run(command: string, options: { timeout: number; stdin?: Buffer | string }): Promise<RemoteCommandResult>;
}

/** Subscribes to the loss of the connection a transfer runs on; returns the unsubscribe function. */
export type LossSubscription = (listener: (error: Error) => void) => () => void;

/** One transfer method on one host. Implementations verify what they moved. */
export interface TransferStrategy {
  readonly method: TransferMethod | 'copy';
  put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult>;
  get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult>;
  /** Releases connections held for transfers. */
  close(): Promise<void>;
}
