/**
 * Lab events: what every host does, for transcripts, live logs and reporters. The host
 * layer only emits; the Playwright layer listens (and nothing below it imports Playwright).
 */
import type { SessionLifecycle } from '../session/shellSession.js';
import { redact } from '../util/secrets.js';
import type { CommandResult } from './results.js';

interface EventBase {
  /** Epoch milliseconds. */
  time: number;
  host: string;
}

export type LabEvent =
  | (EventBase & { type: 'command-start'; id: number; session: string; protocol: string; command: string })
  | (EventBase & { type: 'command-output'; id: number; session: string; line: string })
  | (EventBase & { type: 'command-end'; id: number; session: string; result: CommandResult })
  | (EventBase & { type: 'sent'; session: string; text: string; secret: boolean })
  | (EventBase & { type: 'expect'; session: string; pattern: string; matched?: string; error?: string })
  | (EventBase & { type: 'output'; session: string; line: string })
  | (EventBase & { type: 'session'; session: string; protocol: string; event: SessionLifecycle; detail?: string })
  | (EventBase & {
      type: 'transfer';
      direction: 'put' | 'get';
      method: string;
      local: string;
      remote: string;
      bytes?: number;
      durationMs: number;
      error?: string;
    })
  | (EventBase & { type: 'connection'; protocol: string; event: 'connected' | 'closed' | 'lost' | 'retry'; detail?: string })
  /** Something the reader of a transcript should know (a timeout longer than the test has left). */
  | (EventBase & { type: 'note'; text: string })
  | (EventBase & { type: 'lease'; event: LeaseEventKind; detail: string })
  /**
   * A line of the console log (everything the console printed, secrets masked). A line
   * still open after a quiet moment is sent with `partial: true`; when it ends it is sent
   * again with the same `lineId`, replacing it.
   */
  | (EventBase & { type: 'console'; lineId: number; line: string; partial: boolean })
  /** A kernel message taken out of a console shell command's output. */
  | (EventBase & { type: 'kernel'; session: string; line: string })
  /** Power and lifecycle: a power action, a reboot, waiting until the host is back, a recovery. */
  | (EventBase & { type: 'power'; event: PowerEventKind; text: string; error?: string });

/**
 * What happened to a lease: `waiting` (behind whom), `acquired` (token, after how long),
 * `released`, `lost` (expired or taken over: calls on the host now fail), `renew-failed`
 * (a heartbeat did not reach the store; the lease holds until its TTL runs out), `renewed`
 * (the store answered again in time), `failed`.
 */
export type LeaseEventKind = 'waiting' | 'acquired' | 'released' | 'lost' | 'renew-failed' | 'renewed' | 'failed';

/**
 * What a power event reports: `action` (a driver action), `outage` (a reboot or power off
 * begins), `closed` (what the outage closed), `down` (the device went down), `waiting`
 * (progress while waiting), `up` (back), `failed` (not back within the bound), `health`
 * (a health check after a failed test), `recovering`, `recovered`.
 */
export type PowerEventKind = 'action' | 'outage' | 'closed' | 'down' | 'waiting' | 'up' | 'failed' | 'health' | 'recovering' | 'recovered';

export type LabEventListener = (event: LabEvent) => void;

/** Runs `body` as a named step (Playwright's test.step in tests; a plain call elsewhere). */
export type StepRunner = <T>(title: string, body: () => Promise<T>) => Promise<T>;

/**
 * The event with secrets masked in every text it carries: the one place where events are
 * masked, so no listener (transcripts, reporters, user code) ever sees a secret.
 */
function maskEvent(event: LabEvent): LabEvent {
  if (event.type === 'command-end') return { ...event, result: event.result.masked() };
  const masked: Record<string, unknown> = { ...event };
  for (const key of FREE_TEXT_FIELDS) if (typeof masked[key] === 'string') masked[key] = redact(masked[key]);
  return masked as unknown as LabEvent;
}

/**
 * Fields holding text from commands, devices or users. Names (host, session, protocol,
 * type) stay as they are: they key transcripts, and a short password equal to a host name
 * must not rename the host.
 */
const FREE_TEXT_FIELDS = ['command', 'line', 'text', 'pattern', 'matched', 'error', 'detail', 'local', 'remote'] as const;

/** Distributes lab events to listeners; a throwing listener never breaks a command. */
export class LabEvents {
  private readonly listeners = new Set<LabEventListener>();
  private nextId = 1;

  /** Adds a listener; returns a function removing it. */
  on(listener: LabEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends `event` to every listener, with every registered secret masked in its text. */
  emit(event: LabEvent): void {
    if (this.listeners.size === 0) return;
    const masked = maskEvent(event);
    for (const listener of this.listeners) {
      try {
        listener(masked);
      } catch {
        // Observers must not change what a command does.
      }
    }
  }

  /** A fresh id linking the start, output and end events of one command. */
  commandId(): number {
    return this.nextId++;
  }
}

/**
 * What the test running now gives the lab: how commands become steps, a signal that fires
 * when the test ends (so nothing started for it outlives it), and when its time runs out.
 */
export interface TestBinding {
  step: StepRunner;
  /** The running test's signal, if a test runs (read at every call). */
  signal: () => AbortSignal | undefined;
  /** Epoch ms at which the running test times out, if it has a limit. */
  deadline: () => number | undefined;
}

/** What every host of a lab shares. */
export interface HostContext {
  readonly events: LabEvents;
  /** Wraps each command in a step (the lab's current step runner). */
  readonly step: StepRunner;
  /** Timeout (ms) for commands with none of their own, before host configuration. */
  readonly defaultCommandTimeout: () => number;
  /** The signal of the test running now, if any: every call made for it stops when it fires. */
  readonly signal: () => AbortSignal | undefined;
  /**
   * Says once per test, in the transcript, that a command's timeout is longer than the
   * test has left (the test's own timeout will end it first).
   */
  readonly checkTimeout: (host: string, timeoutMs: number) => void;
  /** Throws when the host's lease was lost (src/host/leases.ts); called before every call on the host. */
  readonly fence?: () => void;
}

/** A step runner that just runs the body. */
export const plainStep: StepRunner = (_title, body) => body();
