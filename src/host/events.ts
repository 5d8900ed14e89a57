/**
 * Lab events: what every host does, for transcripts, live logs and reporters. The host
 * layer only emits; the Playwright layer listens (and nothing below it imports Playwright).
 */
import type { SessionLifecycle } from '../session/shellSession.js';
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
  /**
   * A line of the console log (everything the console printed, secrets masked). A line
   * still open after a quiet moment is sent with `partial: true`; when it ends it is sent
   * again with the same `lineId`, replacing it.
   */
  | (EventBase & { type: 'console'; lineId: number; line: string; partial: boolean })
  /** A kernel message taken out of a console shell command's output. */
  | (EventBase & { type: 'kernel'; session: string; line: string });

export type LabEventListener = (event: LabEvent) => void;

/** Runs `body` as a named step (Playwright's test.step in tests; a plain call elsewhere). */
export type StepRunner = <T>(title: string, body: () => Promise<T>) => Promise<T>;

/** Distributes lab events to listeners; a throwing listener never breaks a command. */
export class LabEvents {
  private readonly listeners = new Set<LabEventListener>();
  private nextId = 1;

  /** Adds a listener; returns a function removing it. */
  on(listener: LabEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: LabEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
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

/** What every host of a lab shares. */
export interface HostContext {
  readonly events: LabEvents;
  /** Wraps each command in a step (the lab's current step runner). */
  readonly step: StepRunner;
  /** Timeout (ms) for commands with none of their own, before host configuration. */
  readonly defaultCommandTimeout: () => number;
}

/** A step runner that just runs the body. */
export const plainStep: StepRunner = (_title, body) => body();
