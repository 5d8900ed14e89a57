/**
 * The session-channel budget of one SSH connection. sshd refuses session channels beyond
 * its MaxSessions ("open failed", reason 2); shells, exec channels and SFTP all count.
 * Holders take a slot for as long as their channel is open; extra requests wait (each
 * with its own bound) instead of failing. direct-tcpip channels (forwards, hops) do not count.
 */
import type { LabwrightError } from '../util/errors.js';
import { ConnectionError } from '../util/errors.js';
import { formatDuration } from '../util/time.js';

/** What a slot is used for, for messages about a full budget. */
export interface SlotLabel {
  kind: 'shell' | 'exec' | 'sftp' | 'probe';
  name: string;
}

interface Waiter {
  label: SlotLabel;
  grant: (release: () => void) => void;
  fail: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A counting semaphore that knows who holds it, with bounded waits and an abort for lost connections. */
export class ChannelBudget {
  private capacityValue: number;
  private readonly holders = new Map<number, SlotLabel>();
  private readonly waiters: Waiter[] = [];
  private nextId = 1;
  private aborted: Error | undefined;

  constructor(
    capacity: number,
    private readonly host: string,
    /** How the capacity was learned, for messages: `configured` or `probed`. */
    readonly source: 'configured' | 'probed',
  ) {
    this.capacityValue = Math.max(1, capacity);
  }

  /** Slots of this connection (the server's MaxSessions as configured or probed; never 0). */
  get capacity(): number {
    return this.capacityValue;
  }

  get inUse(): number {
    return this.holders.size;
  }

  /** Labels of the slots in use, e.g. `shell default, exec, sftp`. */
  describeHolders(): string {
    const counts = new Map<string, number>();
    for (const label of this.holders.values()) {
      const key = label.kind === 'exec' ? 'exec' : `${label.kind} ${label.name}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, count]) => (count > 1 ? `${count}× ${key}` : key)).join(', ');
  }

  /**
   * Takes a slot, waiting up to `timeoutMs` for one. Resolves with the release function
   * (idempotent). Rejects when the wait times out or the connection is lost meanwhile.
   */
  acquire(label: SlotLabel, timeoutMs: number): Promise<() => void> {
    if (this.aborted) return Promise.reject(this.aborted);
    if (this.holders.size < this.capacityValue && this.waiters.length === 0) return Promise.resolve(this.grant(label));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        label,
        grant: resolve,
        fail: reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(this.fullError(label, timeoutMs));
        }, Math.max(0, timeoutMs)),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * The server refused a channel although the budget had room: it allows fewer sessions
   * than assumed. The capacity drops to what is in use (at least 1).
   */
  shrinkToInUse(): void {
    this.capacityValue = Math.max(1, this.holders.size);
  }

  /** Fails every waiter (the connection is gone); later acquires fail at once. */
  abort(error: Error): void {
    this.aborted = error;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.fail(error);
    }
  }

  private grant(label: SlotLabel): () => void {
    const id = this.nextId++;
    this.holders.set(id, label);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders.delete(id);
      this.dispatch();
    };
  }

  private dispatch(): void {
    while (this.holders.size < this.capacityValue && this.waiters.length > 0) {
      const waiter = this.waiters.shift()!;
      clearTimeout(waiter.timer);
      waiter.grant(this.grant(waiter.label));
    }
  }

  private fullError(label: SlotLabel, timeoutMs: number): LabwrightError {
    return new ConnectionError(
      'closed',
      `no SSH session channel free for ${label.kind === 'exec' ? 'exec' : `${label.kind} "${label.name}"`} within ${formatDuration(timeoutMs)}: the server allows ${this.capacityValue} per connection (MaxSessions, ${this.source}) and all are in use (${this.describeHolders()}).`,
      {
        host: this.host,
        protocol: 'ssh',
        hint: 'Close named sessions you no longer need, or raise MaxSessions in the device\'s sshd_config (and ssh.maxSessions in the lab config).',
      },
    );
  }
}
