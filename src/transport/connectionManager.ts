/**
 * ConnectionManager: owns one host's SSH connection (and its SFTP session). Connects on
 * first use and reuses; concurrent first uses share one connect; a lost connection is
 * noticed (close, error, keepalive) and reopened on next use; transient connect failures
 * are retried with capped exponential backoff, refused credentials and host keys never.
 * Test doubles come in through the `factory` seam.
 */
import type { Client as SshClient } from 'ssh2';

import type { RemoteHostConfig } from '../config/defineLab.js';
import { AbortedError, ConnectionError, messageOf } from '../util/errors.js';
import { abortable, sleep } from '../util/time.js';
import { ChannelBudget, serverClosesNewChannels } from './channelBudget.js';
import type { NetworkPath } from './network.js';
import { probeMaxSessions } from './sessionProbe.js';
import { connectSsh, type SshTarget } from './sshConnect.js';
import { SshConnection } from './sshConnection.js';

export { SshConnection } from './sshConnection.js';

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

/** Options of a {@link ConnectionManager}. */
export interface ConnectionManagerOptions {
  /** The way to the host: direct, or through hops (connected when first needed). */
  path: NetworkPath;
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
  /** How long the last successful connect took (TCP, handshake and login), in ms. */
  lastConnectMs: number | undefined;

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

  /**
   * The live connection, connecting (once, for all concurrent callers) when there is none.
   * `signal` only stops this caller's wait: the connect goes on for the others.
   */
  async ssh(signal?: AbortSignal): Promise<SshConnection> {
    if (this.current?.alive) return this.current;
    this.connecting ??= this.connectWithRetry().finally(() => {
      this.connecting = undefined;
    });
    return abortable(
      this.connecting,
      signal,
      () => new AbortedError('waiting for the SSH connection was aborted.', { host: this.config.name, protocol: 'ssh' }),
    );
  }

  /**
   * One connection attempt, without the retries of {@link ssh} and bounded by `timeoutMs`
   * (at most `ssh.connectTimeout`): for callers that poll on their own schedule (waiting for
   * a rebooting device, whose network may swallow a connect until it gives up).
   */
  async tryConnect(timeoutMs: number, signal?: AbortSignal): Promise<SshConnection> {
    if (this.current?.alive) return this.current;
    const connectTimeout = Math.max(1, Math.min(timeoutMs, this.config.ssh.connectTimeout));
    return abortable(
      this.connectOnce(connectTimeout),
      signal,
      () => new AbortedError('waiting for the SSH connection was aborted.', { host: this.config.name, protocol: 'ssh' }),
      (late) =>
        this.invalidate(
          late,
          new ConnectionError('closed', 'a connection attempt finished after its caller gave up.', { host: this.config.name, protocol: 'ssh' }),
        ),
    );
  }

  /**
   * Drops `connection` if it is still the current one (a command saw it broken). Callers
   * holding an older connection do nothing, so one loss leads to one reconnect.
   */
  invalidate(connection: SshConnection, reason: Error): void {
    if (this.current === connection) connection.markLost(reason);
  }

  /**
   * Closes the connection; whatever still uses it fails with `reason` (default: closed by
   * labwright). The manager can connect again afterwards.
   */
  async close(reason?: Error): Promise<void> {
    const connection = this.current;
    this.current = undefined;
    if (connection) {
      const ended = new Promise<void>((resolve) => connection.client.once('close', () => resolve()));
      connection.markLost(reason ?? new ConnectionError('closed', 'the connection was closed by labwright.', { host: this.config.name, protocol: 'ssh' }));
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

  private async connectOnce(connectTimeout = this.config.ssh.connectTimeout): Promise<SshConnection> {
    const config = connectTimeout === this.config.ssh.connectTimeout ? this.config : { ...this.config, ssh: { ...this.config.ssh, connectTimeout } };
    const started = Date.now();
    const client = await this.factory.ssh({ config, user: this.user }, this.options.path);
    this.lastConnectMs = Date.now() - started;
    const { maxSessions } = this.config.ssh;
    let budget: ChannelBudget;
    if (maxSessions !== undefined) {
      budget = new ChannelBudget(maxSessions, this.config.name, 'configured');
    } else {
      const probe = this.factory.probeMaxSessions
        ? await this.factory.probeMaxSessions(client).catch(() => ({ capacity: 10, probed: false }))
        : { capacity: 10, probed: false };
      budget = new ChannelBudget(probe.capacity, this.config.name, probe.probed ? 'probed' : 'configured');
    }
    // ssh2 keeps the server's software version (after "SSH-2.0-") in a private field.
    const software = (client as unknown as { _remoteVer?: string })._remoteVer;
    budget.serialExec = serverClosesNewChannels(software);
    const connection = new SshConnection(client, ++this.generation, budget, this.config.name);
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
    this.options.onEvent?.({
      event: 'connected',
      detail: `${this.user}@${this.config.address}:${this.config.ssh.port}, MaxSessions ${budget.capacity} (${budget.source})${serial}`,
    });
    return connection;
  }
}
