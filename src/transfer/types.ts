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

/** One transfer method on one host. Implementations verify what they moved. */
export interface TransferStrategy {
  readonly method: TransferMethod;
  put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult>;
  get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult>;
  /** Releases connections held for transfers. */
  close(): Promise<void>;
}
