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

/**
 * Frees a slot (idempotent). `opened()` tells the budget that the channel is open and its
 * request (exec, shell, subsystem) answered; only {@link ChannelBudget.serialExec} needs it.
 */
export interface SlotRelease {
  (): void;
  opened(): void;
}

interface Holder {
  label: SlotLabel;
  /** Granted, but the channel's request not yet answered. */
  opening: boolean;
}

interface Waiter {
  label: SlotLabel;
  grant: (release: SlotRelease) => void;
  fail: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A counting semaphore that knows who holds it, with bounded waits and an abort for lost connections. */
export class ChannelBudget {
  private capacityValue: number;
  private readonly holders = new Map<number, Holder>();
  private readonly waiters: Waiter[] = [];
  private nextId = 1;
  private aborted: Error | undefined;
  /**
   * For servers that close a channel opening while a child process ends (see
   * {@link serverClosesNewChannels}): exec channels run alone, one at a time, and channels
   * open one at a time. Shells and SFTP, whose processes do not end by themselves, stay
   * open meanwhile.
   */
  serialExec = false;

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
    for (const { label } of this.holders.values()) {
      const key = label.kind === 'exec' ? 'exec' : `${label.kind} ${label.name}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, count]) => (count > 1 ? `${count}× ${key}` : key)).join(', ');
  }

  /**
   * Takes a slot, waiting up to `timeoutMs` for one. Resolves with the release function
   * (idempotent). Rejects when the wait times out or the connection is lost meanwhile.
   */
  acquire(label: SlotLabel, timeoutMs: number): Promise<SlotRelease> {
    if (this.aborted) return Promise.reject(this.aborted);
    if (this.hasRoom() && this.waiters.length === 0) return Promise.resolve(this.grant(label));
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

  private grant(label: SlotLabel): SlotRelease {
    const id = this.nextId++;
    const holder: Holder = { label, opening: true };
    this.holders.set(id, holder);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.holders.delete(id);
      this.dispatch();
    };
    return Object.assign(release, {
      opened: () => {
        if (released || !holder.opening) return;
        holder.opening = false;
        this.dispatch();
      },
    });
  }

  /** Whether a slot can be granted now. */
  private hasRoom(): boolean {
    if (this.holders.size >= this.capacityValue) return false;
    return !this.serialExec || ![...this.holders.values()].some((holder) => holder.opening || holder.label.kind === 'exec');
  }

  private dispatch(): void {
    while (this.hasRoom() && this.waiters.length > 0) {
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

/**
 * Whether the SSH server (by its version string, e.g. `dropbear_2022.83`) closes a new
 * session channel before answering its request when one of its child processes exits at
 * that moment: Dropbear 2022.82 to 2024.85 (mkj/dropbear#321, fixed by #326). The request
 * fails ("Unable to exec"), and data for the channel then trips an assertion that ends the
 * whole connection. Exec channels must then not overlap with anything that opens.
 */
export function serverClosesNewChannels(software: string | undefined): boolean {
  const version = /^dropbear_(\d{4})\.(\d+)/i.exec(software ?? '');
  if (!version) return false;
  const number = Number(version[1]) * 1000 + Number(version[2]);
  return number >= 2022_082 && number < 2024_086;
}
