/**
 * ConnectionManager: owns one host's SSH connection (and its SFTP session). Connects on
 * first use and reuses; concurrent first uses share one connect; a lost connection is
 * noticed (close, error, keepalive) and reopened on next use; transient connect failures
 * are retried with capped exponential backoff, refused credentials and host keys never.
 * Test doubles come in through the `factory` seam.
 */
import type { Client as SshClient, SFTPWrapper } from 'ssh2';
import type { RemoteHostConfig } from '../config/defineLab.js';
import { ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { sleep, withTimeout } from '../util/time.js';
import { ChannelBudget, serverClosesNewChannels } from './channelBudget.js';
import type { NetworkPath } from './network.js';
import { connectSsh, type SshTarget } from './sshConnect.js';
import { probeMaxSessions } from './sessionProbe.js';

/** Creates raw connections; replace it in tests to inject doubles. */
export interface ConnectionFactory {
  ssh(target: SshTarget, path: NetworkPath): Promise<SshClient>;
  /** Probes MaxSessions on a fresh connection (doubles may return a fixed number). */
  probeMaxSessions?(client: SshClient): Promise<{ capacity: number; probed: boolean }>;
}

/** The real factory: ssh2 over the network path. */
export const defaultConnectionFactory: ConnectionFactory = {
  ssh: connectSsh,
  probeMaxSessions: (client) => probeMaxSessions(client),
};

/** Connection lifecycle, for transcripts. */
export type ConnectionEvent = { event: 'connected' | 'closed' | 'lost' | 'retry'; detail?: string };

/** One live SSH connection and its channel budget. */
export class SshConnection {
  private lostError: Error | undefined;
  private readonly lostListeners = new Set<(error: Error) => void>();
  private sftpSession: Promise<SFTPWrapper> | undefined;
  private interactive: Promise<void> | undefined;

  constructor(
    readonly client: SshClient,
    readonly generation: number,
    readonly budget: ChannelBudget,
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
   * Makes the server treat the connection as interactive, once: OpenSSH's sshd turns
   * Nagle off (TCP_NODELAY) on a connection only when a session asks for a pty. A bastion
   * used only for forwarding never does, so small packets through it waited for delayed
   * ACKs (about 40 ms per command round trip). A pty exec of `true` flips it for good.
   */
  makeInteractive(): Promise<void> {
    this.interactive ??= (async () => {
      const release = await this.budget.acquire({ kind: 'exec', name: 'interactive' }, 10_000);
      try {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 10_000);
          try {
            this.client.exec('true', { pty: { term: 'dumb', cols: 80, rows: 24 } }, (error, channel) => {
              if (error) {
                clearTimeout(timer);
                return resolve();
              }
              channel.resume();
              channel.stderr.resume();
              channel.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
            });
          } catch {
            clearTimeout(timer);
            resolve();
          }
        });
      } finally {
        release();
      }
    })();
    return this.interactive;
  }

  /** The connection's SFTP session, opened on first use (it holds one channel slot). */
  sftp(host: string, timeoutMs: number): Promise<SFTPWrapper> {
    this.sftpSession ??= (async () => {
      const release = await this.budget.acquire({ kind: 'sftp', name: 'sftp' }, timeoutMs);
      try {
        const sftp = await withTimeout(
          new Promise<SFTPWrapper>((resolve, reject) => this.client.sftp((error, session) => (error ? reject(error) : resolve(session)))),
          timeoutMs,
          () => new ConnectionError('timeout', 'the SFTP subsystem did not start in time.', { host, protocol: 'sftp', hint: 'Check the Subsystem sftp line of the device\'s sshd_config.' }),
        );
        release.opened();
        sftp.once('close', () => {
          release();
          this.sftpSession = undefined;
        });
        return sftp;
      } catch (error) {
        release();
        this.sftpSession = undefined;
        if (error instanceof LabwrightError) throw error;
        throw new ConnectionError('protocol', `the SFTP subsystem could not start: ${messageOf(error)}.`, {
          host,
          protocol: 'sftp',
          hint: 'Check that the device runs an SFTP server (Subsystem sftp in sshd_config), or use transfer: "scp".',
          cause: error,
        });
      }
    })();
    return this.sftpSession;
  }
}

/** Options of a {@link ConnectionManager}. */
export interface ConnectionManagerOptions {
  /** The way to the host: direct, or through hops (resolved when first needed). */
  path: () => Promise<NetworkPath>;
  /** User to log in as; default: the host's default user. */
  user?: string;
  factory?: ConnectionFactory;
  onEvent?: (event: ConnectionEvent) => void;
}

export class ConnectionManager {
  private current: SshConnection | undefined;
  private connecting: Promise<SshConnection> | undefined;
  private generation = 0;
  private readonly factory: ConnectionFactory;
  readonly user: string;

  constructor(
    readonly config: RemoteHostConfig,
    private readonly options: ConnectionManagerOptions,
  ) {
    this.factory = options.factory ?? defaultConnectionFactory;
    this.user = options.user ?? config.user;
  }

  /** Whether a live connection is open right now. */
  get connected(): boolean {
    return this.current?.alive ?? false;
  }

  /** The live connection, connecting (once, for all concurrent callers) when there is none. */
  async ssh(): Promise<SshConnection> {
    if (this.current?.alive) return this.current;
    this.connecting ??= this.connectWithRetry().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /**
   * Drops `connection` if it is still the current one (a command saw it broken). Callers
   * holding an older connection do nothing, so one loss leads to one reconnect.
   */
  invalidate(connection: SshConnection, reason: Error): void {
    if (this.current === connection) connection.markLost(reason);
  }

  /** Closes the connection. The manager can connect again afterwards. */
  async close(): Promise<void> {
    const connection = this.current;
    this.current = undefined;
    if (connection) {
      const ended = new Promise<void>((resolve) => connection.client.once('close', () => resolve()));
      connection.markLost(new ConnectionError('closed', 'the connection was closed by labwright.', { host: this.config.name, protocol: 'ssh' }));
      await Promise.race([ended, sleep(2_000)]);
      this.options.onEvent?.({ event: 'closed' });
    }
  }

  private async connectWithRetry(): Promise<SshConnection> {
    const { ssh } = this.config;
    let delay = ssh.connectBackoff;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.connectOnce();
      } catch (error) {
        const transient = error instanceof ConnectionError && error.transient;
        if (!transient || attempt >= ssh.connectAttempts) throw error;
        this.options.onEvent?.({ event: 'retry', detail: `attempt ${attempt} of ${ssh.connectAttempts} failed: ${messageOf(error)}` });
        await sleep(delay);
        delay = Math.min(delay * 2, ssh.connectBackoffMax);
      }
    }
  }

  private async connectOnce(): Promise<SshConnection> {
    const path = await this.options.path();
    const client = await this.factory.ssh({ config: this.config, user: this.user }, path);
    const { maxSessions } = this.config.ssh;
    let budget: ChannelBudget;
    if (maxSessions !== undefined) {
      budget = new ChannelBudget(maxSessions, this.config.name, 'configured');
    } else {
      const probe = this.factory.probeMaxSessions ? await this.factory.probeMaxSessions(client).catch(() => ({ capacity: 10, probed: false })) : { capacity: 10, probed: false };
      budget = new ChannelBudget(probe.capacity, this.config.name, probe.probed ? 'probed' : 'configured');
    }
    // ssh2 keeps the server's software version (after "SSH-2.0-") in a private field.
    const software = (client as unknown as { _remoteVer?: string })._remoteVer;
    budget.serialExec = serverClosesNewChannels(software);
    const connection = new SshConnection(client, ++this.generation, budget);
    const lost = (detail: string) => {
      const error = new ConnectionError('closed', `the SSH connection to ${this.config.address}:${this.config.ssh.port} was lost: ${detail}.`, {
        host: this.config.name,
        protocol: 'ssh',
        hint: 'The next command reconnects; if this repeats, check the device and its network.',
      });
      if (connection.alive && this.current === connection) this.options.onEvent?.({ event: 'lost', detail });
      connection.markLost(error);
    };
    client.on('error', (error: Error) => lost(messageOf(error)));
    client.on('close', () => lost('the connection closed'));
    client.on('end', () => lost('the server ended the connection'));
    this.current = connection;
    const serial = budget.serialExec ? `; exec channels one at a time (${software} closes new channels while a command ends, dropbear#321)` : '';
    this.options.onEvent?.({ event: 'connected', detail: `${this.user}@${this.config.address}:${this.config.ssh.port}, MaxSessions ${budget.capacity} (${budget.source})${serial}` });
    return connection;
  }
}
