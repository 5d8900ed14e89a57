import { redact } from './secrets.js';

/** Protocols and subsystems an error can be attributed to. */
export type ErrorProtocol = 'ssh' | 'telnet' | 'local' | 'sftp' | 'scp' | 'ftp' | 'nc' | 'config' | 'forward' | 'share' | 'lease' | 'console' | 'power';

/** Where an error happened and what the user can do about it. */
export interface ErrorContext {
  /** Lab host name the error concerns. */
  host?: string;
  /** Protocol or subsystem that failed. */
  protocol?: ErrorProtocol;
  /** What to do about it, as a sentence. */
  hint?: string;
  /** The underlying error, kept for debugging (its message is redacted when shown). */
  cause?: unknown;
  /** Leave the `host (protocol):` prefix out of the message. */
  unprefixed?: boolean;
}

/**
 * Base class of every error labwright throws. The message names the host and the
 * protocol, says what went wrong and what to do; secrets are masked.
 */
export class LabwrightError extends Error {
  readonly host: string | undefined;
  readonly protocol: ErrorProtocol | undefined;
  readonly hint: string | undefined;
  /** The message without the host/protocol prefix and the hint. */
  readonly detail: string;

  constructor(detail: string, context: ErrorContext = {}) {
    const where = context.unprefixed
      ? ''
      : context.host
        ? `${context.host}${context.protocol ? ` (${context.protocol})` : ''}: `
        : context.protocol
          ? `${context.protocol}: `
          : '';
    const hint = context.hint ? ` ${context.hint}` : '';
    super(redact(`${where}${detail}${hint}`), context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.host = context.host;
    this.protocol = context.protocol;
    this.hint = context.hint;
    this.detail = redact(detail);
  }
}

/** The lab configuration is invalid. Thrown before any connection is made. */
export class ConfigError extends LabwrightError {
  /** One line per problem found. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[], source?: string) {
    const header = `Invalid lab configuration${source ? ` in ${source}` : ''}`;
    super(problems.length === 1 ? `${header}: ${problems[0]}` : `${header}:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      protocol: 'config',
      unprefixed: true,
    });
    this.problems = problems;
  }
}

/** Why a connection attempt failed; drives retry decisions (only transient kinds are retried). */
export type ConnectFailure = 'dns' | 'refused' | 'timeout' | 'unreachable' | 'reset' | 'auth' | 'host-key' | 'protocol' | 'closed';

/** A connection could not be opened or was lost. */
export class ConnectionError extends LabwrightError {
  readonly kind: ConnectFailure;
  constructor(kind: ConnectFailure, detail: string, context: ErrorContext) {
    super(detail, context);
    this.kind = kind;
  }
  /** Whether trying again later can succeed (never for credentials or host keys). */
  get transient(): boolean {
    return this.kind !== 'auth' && this.kind !== 'host-key' && this.kind !== 'dns';
  }
}

/** A shell session ended underneath a command, or could not be recovered after a timeout. */
export class SessionClosedError extends LabwrightError {}

/** `expect()` did not see its pattern in time. */
export class ExpectTimeoutError extends LabwrightError {
  /** Output received while waiting (redacted). */
  readonly received: string;
  constructor(detail: string, received: string, context: ErrorContext) {
    super(detail, context);
    this.received = redact(received);
  }
}

/** The console is held by another caller (or another process) beyond the caller's bound. */
export class ConsoleBusyError extends LabwrightError {}
/**
 * Why a transfer failed, for callers that react to it (never match the message):
 * - `missing`: a source or destination path does not exist;
 * - `denied`: it exists (or may) but the user may not read or write it;
 * - `not-a-directory` / `is-a-directory`: a path is a file where a directory is needed, or the reverse;
 * - `stalled`: no progress for the transfer's `timeout`;
 * - `aborted`: the caller's `signal` fired;
 * - `lost`: the connection carrying the transfer was lost;
 * - `incomplete` / `corrupted`: verification found other sizes or digests;
 * - `unsupported`: an option or method this host kind or method cannot honour;
 * - `failed`: anything else (the message says what).
 */
export type TransferFailure =
  'missing' | 'denied' | 'not-a-directory' | 'is-a-directory' | 'stalled' | 'aborted' | 'lost' | 'incomplete' | 'corrupted' | 'unsupported' | 'failed';

/** A file transfer failed or its verification did not match. */
export class TransferError extends LabwrightError {
  readonly kind: TransferFailure;
  constructor(detail: string, context: ErrorContext & { kind?: TransferFailure } = {}) {
    super(detail, context);
    this.kind = context.kind ?? 'failed';
  }
}

/** A wait exceeded its bound. */
export class TimeoutError extends LabwrightError {}

/** The caller gave up: its AbortSignal fired (the test ended, `lab.close()`, user code). */
export class AbortedError extends LabwrightError {}
/**
 * Why a lease failed: `timeout` (no device became free within the bound), `lost` (a held
 * lease expired or was taken over: the holder must stop using the device), `unreachable`
 * (the lease store cannot be reached), `no-match` (no device of the lab fits the selector),
 * `store` (the store answered with an error: permissions, a schema from a newer version).
 */
export type LeaseFailure = 'timeout' | 'lost' | 'unreachable' | 'no-match' | 'store';

/** A device lease could not be obtained, or a held one was lost (src/lease/). */
export class LeaseError extends LabwrightError {
  readonly kind: LeaseFailure;
  constructor(kind: LeaseFailure, detail: string, context: ErrorContext = {}) {
    super(detail, { protocol: 'lease', ...context });
    this.kind = kind;
  }
}

/** Where a power action went: the PDU (or a host's own driver), its driver kind and the outlet. */
export interface PowerTarget {
  /** Name of the PDU in the lab config, or of the host whose own driver it is. */
  pdu: string;
  /** Driver kind: `qemu`, `command`, `http`. */
  driver: string;
  /** Outlet on the PDU, if the driver has outlets. */
  outlet: string | undefined;
}

/** A power action (on, off, cycle, state) failed or timed out. The message names host, driver and outlet. */
export class PowerError extends LabwrightError {
  readonly target: PowerTarget;
  constructor(detail: string, target: PowerTarget, context: ErrorContext) {
    super(detail, { ...context, protocol: 'power' });
    this.target = target;
  }
}

/**
 * A host cannot be used right now: it is rebooting, powered off, or did not come back.
 * Calls made meanwhile fail at once with this error instead of waiting or hanging.
 */
export class HostUnavailableError extends LabwrightError {
  /** Why: `rebooting` (a reboot or power on is under way), `off` (powered off), `down` (did not come back). */
  readonly state: 'rebooting' | 'off' | 'down';
  constructor(state: 'rebooting' | 'off' | 'down', detail: string, context: ErrorContext) {
    super(detail, context);
    this.state = state;
  }
}

/** Returns the message of anything thrown, redacted. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return redact(error.message);
  return redact(String(error));
}
