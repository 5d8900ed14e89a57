/**
 * The session-channel budget of one SSH connection. sshd refuses session channels beyond
 * its MaxSessions ("open failed", reason 2); shells, exec channels and SFTP all count.
 * Holders take a slot for as long as their channel is open; extra requests wait (each
 * with its own bound and signal) instead of failing. direct-tcpip channels (forwards,
 * hops) do not count. A holder that is idle (an SFTP session between transfers) can be
 * reclaimed: when a request would wait, the idle holder is asked to close and its slot
 * goes to the request, so a long-lived channel never starves the others.
 */
import { AbortedError, TimeoutError } from '../util/errors.js';
import { abortReason, formatDuration } from '../util/time.js';

/** What a slot is used for, for messages about a full budget. */
export interface SlotLabel {
  kind: 'shell' | 'exec' | 'sftp' | 'probe';
  name: string;
}

/** A slot held in the budget. */
export interface Slot {
  /** Gives the slot back (idempotent); call it when the channel has closed. */
  release(): void;
  /**
   * Marks the holder idle with a way to close it (`reclaim`), or busy again (`undefined`).
   * A request that would otherwise wait calls `reclaim`; the slot is freed by `release()`
   * once the channel has closed.
   */
  idle(reclaim: (() => void) | undefined): void;
  /** The channel is open and its request (exec, shell, subsystem) answered; only {@link ChannelBudget.serialExec} needs it. */
  opened(): void;
}

interface Holder {
  label: SlotLabel;
  reclaim: (() => void) | undefined;
  reclaiming: boolean;
  /** Granted, but the channel's request not yet answered. */
  opening: boolean;
}

interface Waiter {
  label: SlotLabel;
  grant: (slot: Slot) => void;
  fail: (error: Error) => void;
  timer: NodeJS.Timeout;
  dispose: () => void;
}

/** A counting semaphore that knows who holds it, with bounded waits, reclaim of idle holders and an abort for lost connections. */
export class ChannelBudget {
  private capacityValue: number;
  private readonly holders = new Map<number, Holder>();
  private readonly waiters: Waiter[] = [];
  private nextId = 1;
  private aborted: Error | undefined;
  private lastRelease = 0;
  /**
   * For servers that close a channel opening while a child process ends (see
   * {@link serverClosesNewChannels}): channels open one at a time, and exec and SFTP
   * channels, whose processes end when their work is done (or when labwright ends an idle
   * SFTP session), are alone while they are open; an idle one is reclaimed at once when
   * something waits. Shells stay open meanwhile.
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

  /**
   * Whether a slot was given back within `ms`. A server frees a session only once its
   * channel is gone and its process reaped, a little after the client saw the close: a
   * refusal just then says nothing about MaxSessions.
   */
  releasedWithin(ms: number): boolean {
    return Date.now() - this.lastRelease < ms;
  }

  /** Labels of the slots in use, e.g. `shell default, exec, sftp`. */
  describeHolders(): string {
    const counts = new Map<string, number>();
    for (const { label, reclaim } of this.holders.values()) {
      const key = `${label.kind === 'exec' ? 'exec' : `${label.kind} ${label.name}`}${reclaim ? ' (idle)' : ''}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, count]) => (count > 1 ? `${count}× ${key}` : key)).join(', ');
  }

  /**
   * Takes a slot, waiting up to `timeoutMs` for one. Rejects with a {@link TimeoutError}
   * when the wait times out (the connection is fine, only busy), an {@link AbortedError}
   * when `signal` fires, or the connection's error when it is lost meanwhile.
   */
  acquire(label: SlotLabel, timeoutMs: number, signal?: AbortSignal): Promise<Slot> {
    if (this.aborted) return Promise.reject(this.aborted);
    if (signal?.aborted) return Promise.reject(this.abortedError(label, signal));
    if (this.hasRoom() && this.waiters.length === 0) return Promise.resolve(this.grant(label));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.removeWaiter(waiter);
        reject(this.abortedError(label, signal!));
      };
      const waiter: Waiter = {
        label,
        grant: resolve,
        fail: reject,
        timer: setTimeout(
          () => {
            this.removeWaiter(waiter);
            reject(this.fullError(label, timeoutMs));
          },
          Math.max(0, timeoutMs),
        ),
        dispose: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.reclaimIdle();
    });
  }

  /**
   * Whether a channel that ends by itself (exec, SFTP) would be granted without waiting on a
   * busy holder: now, or as soon as idle holders give their slots back. False when, on a
   * server taking exec channels one at a time, a running command or transfer holds the way.
   */
  get freeForEnding(): boolean {
    if (this.aborted || this.waiters.length > 0) return false;
    if (this.hasRoom()) return true;
    const holders = [...this.holders.values()];
    const idle = holders.filter((holder) => holder.reclaim !== undefined);
    if (holders.length - idle.length >= this.capacityValue) return false;
    return !this.serialExec || holders.every((holder) => !holder.opening && (!ending(holder.label) || holder.reclaim !== undefined));
  }

  /**
   * The server refused a channel although the budget had room: it allows fewer sessions
   * than assumed. The capacity drops to what is in use (at least 1).
   */
  shrinkToInUse(): void {
    this.capacityValue = Math.max(1, this.holders.size);
    this.reclaimIdle();
  }

  /** Fails every waiter (the connection is gone); later acquires fail at once. */
  abort(error: Error): void {
    this.aborted = error;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.dispose();
      waiter.fail(error);
    }
  }

  private grant(label: SlotLabel): Slot {
    const id = this.nextId++;
    const holder: Holder = { label, reclaim: undefined, reclaiming: false, opening: true };
    this.holders.set(id, holder);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.holders.delete(id);
        this.lastRelease = Date.now();
        this.dispatch();
      },
      idle: (reclaim) => {
        if (released) return;
        holder.reclaim = reclaim;
        if (reclaim) this.reclaimIdle();
      },
      opened: () => {
        if (released || !holder.opening) return;
        holder.opening = false;
        this.dispatch();
      },
    };
  }

  /** Whether a slot can be granted now. */
  private hasRoom(): boolean {
    if (this.holders.size >= this.capacityValue) return false;
    return !this.serialExec || ![...this.holders.values()].some((holder) => holder.opening || ending(holder.label));
  }

  /** Asks idle holders to close, one per request that is waiting beyond the free slots. */
  private reclaimIdle(): void {
    let needed = this.waiters.length - Math.max(0, this.capacityValue - this.holders.size);
    // In serial mode an idle SFTP session keeps everything waiting, whatever the capacity.
    if (this.serialExec && this.waiters.length > 0)
      needed = Math.max(needed, [...this.holders.values()].filter((holder) => ending(holder.label) && holder.reclaim).length);
    for (const holder of this.holders.values()) {
      if (needed <= 0) return;
      if (holder.reclaiming) {
        needed--;
        continue;
      }
      if (!holder.reclaim) continue;
      holder.reclaiming = true;
      needed--;
      try {
        holder.reclaim();
      } catch {
        // The holder closes on its own terms; its release() frees the slot.
      }
    }
  }

  private removeWaiter(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index !== -1) this.waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    waiter.dispose();
  }

  private dispatch(): void {
    while (this.hasRoom() && this.waiters.length > 0) {
      const waiter = this.waiters.shift()!;
      clearTimeout(waiter.timer);
      waiter.dispose();
      waiter.grant(this.grant(waiter.label));
    }
  }

  private describe(label: SlotLabel): string {
    return label.kind === 'exec' ? 'exec' : `${label.kind} "${label.name}"`;
  }

  private abortedError(label: SlotLabel, signal: AbortSignal): AbortedError {
    return new AbortedError(`waiting for an SSH session channel for ${this.describe(label)} was aborted: ${abortReason(signal)}.`, {
      host: this.host,
      protocol: 'ssh',
    });
  }

  private fullError(label: SlotLabel, timeoutMs: number): TimeoutError {
    return new TimeoutError(
      `no SSH session channel free for ${this.describe(label)} within ${formatDuration(timeoutMs)}: the server allows ${this.capacityValue} per connection (MaxSessions, ${this.source}) and all are in use (${this.describeHolders()}).`,
      {
        host: this.host,
        protocol: 'ssh',
        hint: "Close named sessions you no longer need, or raise MaxSessions in the device's sshd_config (and ssh.maxSessions in the lab config).",
      },
    );
  }
}

/** Whether a channel's process ends by itself (exec) or when labwright ends the session (SFTP): see {@link ChannelBudget.serialExec}. */
function ending(label: SlotLabel): boolean {
  return label.kind === 'exec' || label.kind === 'sftp';
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
