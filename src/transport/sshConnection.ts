/**
 * One live SSH connection: its channel budget, how channels are opened under it (shells,
 * exec, SFTP, scp all come through {@link SshConnection.openChannel}), the SFTP session it
 * shares between transfers, and how it is declared lost.
 */
import type { EventEmitter } from 'node:events';
import type { ClientChannel, Client as SshClient, SFTPWrapper } from 'ssh2';
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

/** An SFTP session lent to a transfer; `release()` when the transfer is done with it. */
export interface SftpLease {
  readonly sftp: SFTPWrapper;
  release(): void;
}

/** An SFTP session with its channel slot. */
interface OpenSftp {
  sftp: SFTPWrapper;
  slot: Slot;
}

/** The connection's shared SFTP session: opening or open, its users, its linger timer. */
interface SftpState {
  pending: Promise<OpenSftp>;
  users: number;
  linger: NodeJS.Timeout | undefined;
}

/** A refusal this soon after a slot was given back is treated as the server still freeing it. */
const RECENT_RELEASE_MS = 2_000;
/** Pause before asking again after such a refusal. */
const REFUSAL_RETRY_MS = 50;

/** How long an unused SFTP session stays open for the next transfer before it gives its slot back. */
const SFTP_LINGER_MS = 2_000;

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
  private sftpState: SftpState | undefined;

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
    if (this.sftpState) clearTimeout(this.sftpState.linger);
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
        opened = await abortable(this.guarded(open), signal, () => new AbortedError(`opening a ${label.kind} channel was aborted.`, { host: this.host, protocol: 'ssh' }), (late) => {
          const emitter = closeOf(late) as EventEmitter & { close?: () => void };
          emitter.close?.();
        });
      } catch (error) {
        slot.release();
        if (!this.alive) throw this.lostError instanceof LabwrightError ? this.lostError : notUsable(this.host, this.lostError ?? error);
        if (error instanceof LabwrightError) throw error;
        if (!isChannelOpenFailure(error)) {
          throw new ConnectionError('protocol', `the server refused a ${label.kind} channel: ${messageOf(error)}.`, { host: this.host, protocol: 'ssh', cause: error });
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
            { host: this.host, protocol: 'ssh', hint: `Set ssh.maxSessions to ${inUse} (the MaxSessions of the device's sshd_config), or remove it to let labwright probe it.`, cause: error },
          );
        }
        if (Date.now() >= deadline) throw error;
        continue;
      }
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
   * Lends the connection's SFTP session to a transfer, opening it on first use. Sessions
   * are shared by concurrent transfers; one that nobody uses gives its channel slot back
   * after a short linger, or at once when another channel waits for a slot.
   */
  async sftp(timeoutMs: number, signal?: AbortSignal): Promise<SftpLease> {
    let state = this.sftpState;
    if (!state) {
      const created: SftpState = { pending: this.openSftp(timeoutMs), users: 0, linger: undefined };
      const forget = () => {
        if (this.sftpState === created) this.sftpState = undefined;
      };
      created.pending.then(({ sftp }) => sftp.once('close', forget), forget);
      this.sftpState = state = created;
    }
    const current = state;
    clearTimeout(current.linger);
    current.users++;
    let session: OpenSftp;
    try {
      // Opening is shared: one caller's signal must not fail the others, so each only stops waiting.
      session = await abortable(current.pending, signal, () => new AbortedError('waiting for the SFTP session was aborted.', { host: this.host, protocol: 'sftp' }));
    } catch (error) {
      this.releaseSftp(current, undefined);
      throw error;
    }
    session.slot.idle(undefined);
    let released = false;
    return {
      sftp: session.sftp,
      release: () => {
        if (released) return;
        released = true;
        this.releaseSftp(current, session);
      },
    };
  }

  private releaseSftp(state: SftpState, session: OpenSftp | undefined): void {
    if (--state.users > 0 || !session) return;
    const close = () => {
      clearTimeout(state.linger);
      if (this.sftpState === state) this.sftpState = undefined;
      session.sftp.end();
    };
    session.slot.idle(close);
    state.linger = setTimeout(close, SFTP_LINGER_MS);
    state.linger.unref();
  }

  private async openSftp(timeoutMs: number): Promise<OpenSftp> {
    const held = await this.openChannel(
      { kind: 'sftp', name: 'sftp' },
      timeoutMs,
      (client) =>
        new Promise<{ sftp: SFTPWrapper }>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('the SFTP subsystem did not answer in time')), timeoutMs);
          client.sftp((error, sftp) => {
            clearTimeout(timer);
            if (error) return reject(this.sftpRefused(error));
            resolve({ sftp });
          });
        }),
      (opened) => opened.sftp,
    );
    return { sftp: held.sftp, slot: held.slot };
  }

  /** A subsystem refusal (no SFTP server) as opposed to a channel refusal (MaxSessions). */
  private sftpRefused(error: Error): Error {
    if (isChannelOpenFailure(error)) return error;
    return new ConnectionError('protocol', `the SFTP subsystem could not start: ${messageOf(error)}.`, {
      host: this.host,
      protocol: 'sftp',
      hint: 'Check that the device runs an SFTP server (Subsystem sftp in sshd_config), or use transfer: "scp".',
      cause: error,
    });
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
