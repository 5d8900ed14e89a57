/**
 * One live SSH connection: its channel budget, how channels are opened under it (shells,
 * exec, SFTP, scp all come through {@link SshConnection.openChannel}), and how it is
 * declared lost.
 */
import type { EventEmitter } from 'node:events';

import type { Client as SshClient, ClientChannel } from 'ssh2';

import { AbortedError, ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { abortable, sleep } from '../util/time.js';
import type { ChannelBudget, Slot, SlotLabel } from './channelBudget.js';
import { isChannelOpenFailure } from './sessionProbe.js';

/** A channel held with its budget slot; the slot is freed when the channel closes. */
export type HeldChannel<T> = T & {
  connection: SshConnection;
  /** The channel's budget slot. */
  slot: Slot;
  /** Frees the slot early (it is freed on close anyway). */
  release: () => void;
};

/** A refusal this soon after a slot was given back is treated as the server still freeing it. */
const RECENT_RELEASE_MS = 2_000;
/** Pause before asking again after such a refusal. */
const REFUSAL_RETRY_MS = 50;

/**
 * The error for ssh2 refusing a call because the connection is down (it throws
 * synchronously from exec, shell, sftp, forwardOut and forwardIn when not connected).
 */
export function notUsable(host: string, error: unknown): ConnectionError {
  return new ConnectionError('closed', `the SSH connection is not usable: ${messageOf(error)}.`, {
    host,
    protocol: 'ssh',
    hint: 'The next command reconnects; if this repeats, check the device and its network.',
  });
}

export class SshConnection {
  private lostError: Error | undefined;
  private readonly lostListeners = new Set<(error: Error) => void>();
  private interactive: Promise<void> | undefined;

  constructor(
    readonly client: SshClient,
    readonly generation: number,
    readonly budget: ChannelBudget,
    /** Lab host name, for errors. */
    readonly host: string,
  ) {}

  /** Whether the connection is still usable. */
  get alive(): boolean {
    return this.lostError === undefined;
  }

  /** Why the connection was lost, if it was. */
  get lostReason(): Error | undefined {
    return this.lostError;
  }

  /** Calls `listener` once when the connection is lost (at once if it already is). Returns an unsubscribe function. */
  onLost(listener: (error: Error) => void): () => void {
    if (this.lostError) {
      listener(this.lostError);
      return () => {};
    }
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Marks the connection lost; every waiter and listener is told. Idempotent. */
  markLost(error: Error): void {
    if (this.lostError) return;
    this.lostError = error;
    this.budget.abort(error);
    for (const listener of this.lostListeners) listener(error);
    this.lostListeners.clear();
    try {
      this.client.end();
    } catch {
      // Already closed.
    }
  }

  /**
   * Takes a channel slot (waiting up to `timeoutMs`) and opens a channel with `open`; the
   * slot is freed when `closeOf(opened)` emits `close`. Errors are classified here, where
   * they arise: a lost connection is a {@link ConnectionError} of kind `closed`; a refusal
   * while the budget had room means the server allows fewer sessions than assumed (the
   * budget shrinks and the request waits for a slot, or, when `ssh.maxSessions` was
   * configured, fails with what to fix); waiting for a slot is never a lost connection.
   */
  async openChannel<T>(
    label: SlotLabel,
    timeoutMs: number,
    open: (client: SshClient) => Promise<T>,
    closeOf: (opened: T) => EventEmitter,
    signal?: AbortSignal,
  ): Promise<HeldChannel<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const slot = await this.budget.acquire(label, Math.max(0, deadline - Date.now()), signal);
      let opened: T;
      try {
        opened = await abortable(
          this.guarded(open),
          signal,
          () => new AbortedError(`opening a ${label.kind} channel was aborted.`, { host: this.host, protocol: 'ssh' }),
          (late) => {
            const emitter = closeOf(late) as EventEmitter & { close?: () => void };
            emitter.close?.();
          },
        );
      } catch (error) {
        slot.release();
        if (!this.alive) throw this.lostError instanceof LabwrightError ? this.lostError : notUsable(this.host, this.lostError ?? error);
        if (error instanceof LabwrightError) throw error;
        if (!isChannelOpenFailure(error)) {
          throw new ConnectionError('protocol', `the server refused a ${label.kind} channel: ${messageOf(error)}.`, {
            host: this.host,
            protocol: 'ssh',
            cause: error,
          });
        }
        // The server may not have freed a session whose channel just closed: try again shortly.
        if (this.budget.releasedWithin(RECENT_RELEASE_MS) && Date.now() + REFUSAL_RETRY_MS < deadline) {
          await sleep(REFUSAL_RETRY_MS, signal).catch(() => {});
          continue;
        }
        const inUse = this.budget.inUse;
        if (inUse === 0) {
          throw new ConnectionError('protocol', `the server refuses every session channel (${messageOf(error)}).`, {
            host: this.host,
            protocol: 'ssh',
            hint: "Check MaxSessions in the device's sshd_config (0 forbids sessions) and ssh.maxSessions in the lab config.",
          });
        }
        const configured = this.budget.source === 'configured' ? this.budget.capacity : undefined;
        this.budget.shrinkToInUse();
        if (configured !== undefined) {
          throw new ConnectionError(
            'protocol',
            `the server refused a session channel with ${inUse} open, although ssh.maxSessions is ${configured}: the device allows fewer sessions per connection (MaxSessions) than the lab config says.`,
            {
              host: this.host,
              protocol: 'ssh',
              hint: `Set ssh.maxSessions to ${inUse} (the MaxSessions of the device's sshd_config), or remove it to let labwright probe it.`,
              cause: error,
            },
          );
        }
        if (Date.now() >= deadline) throw error;
        continue;
      }
      slot.opened();
      closeOf(opened).once('close', slot.release);
      return Object.assign(opened as object, { connection: this, slot, release: slot.release }) as unknown as HeldChannel<T>;
    }
  }

  /** Runs `open`, turning ssh2's synchronous "not connected" throws into a {@link ConnectionError}. */
  private async guarded<T>(open: (client: SshClient) => Promise<T>): Promise<T> {
    try {
      return await open(this.client);
    } catch (error) {
      if (!this.alive || /not connected|no response from server/i.test(messageOf(error))) throw notUsable(this.host, error);
      throw error;
    }
  }

  /**
   * Makes the server treat the connection as interactive, once: OpenSSH's sshd turns
   * Nagle off (TCP_NODELAY) on a connection only when a session asks for a pty. A bastion
   * used only for forwarding never does, so small packets through it waited for delayed
   * ACKs (about 40 ms per command round trip). A pty exec of `true` flips it for good.
   */
  makeInteractive(): Promise<void> {
    this.interactive ??= (async () => {
      try {
        const held = await this.openChannel(
          { kind: 'exec', name: 'interactive' },
          10_000,
          (client) =>
            new Promise<{ channel: ClientChannel }>((resolve, reject) =>
              client.exec('true', { pty: { term: 'dumb', cols: 80, rows: 24 } }, (error, channel) => (error ? reject(error) : resolve({ channel }))),
            ),
          (opened) => opened.channel,
        );
        held.channel.resume();
        held.channel.stderr.resume();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 10_000);
          held.channel.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      } catch {
        // Only a speed-up: a bastion that refuses it still forwards.
      }
    })();
    return this.interactive;
  }
}
