/**
 * ConnectionManager: owns one host's SSH connection. Connects on first use and reuses;
 * concurrent first uses share one connect; a lost connection is noticed (close, error,
 * keepalive) and reopened on next use; transient connect failures are retried with capped
 * exponential backoff, refused credentials and host keys never. On servers that take exec
 * channels one at a time, exec and SFTP channels that would wait behind a running command
 * get side connections ({@link ConnectionManager.withEndingConnection}). Test doubles come in
 * through the `factory` seam.
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

/**
 * Side connections at most, beside the main one, for exec and SFTP channels on a server that
 * takes exec channels one at a time: enough for a few long commands, transfers and the
 * commands that stop them, few enough to stay under a server's MaxStartups.
 */
export const MAX_SIDE_CONNECTIONS = 4;

export class ConnectionManager {
  private current: SshConnection | undefined;
  /** Side connections (see {@link withEndingConnection}), live ones only. */
  private side: SshConnection[] = [];
  private sideConnecting: Promise<SshConnection> | undefined;
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
   * Calls `use` with the connection to open an exec or SFTP channel on, in the same
   * synchronous step as the choice, so that the choice and the slot `use` takes go together
   * (`use` must call `openChannel` before its first await). Normally the main connection. On
   * a server that takes exec channels one at a time (Dropbear 2022.82–2024.85, see
   * serverClosesNewChannels) a channel there would wait until a running command or transfer
   * ends, which may be never (`tail -f`, a long upload, the command that stops another):
   * such a server runs each connection in a process of its own, so `use` gets a side
   * connection that is free, opened here when none is (at most {@link MAX_SIDE_CONNECTIONS}).
   * When none can be had, the main connection, where the channel waits its turn.
   */
  async withEndingConnection<T>(signal: AbortSignal | undefined, use: (connection: SshConnection) => T): Promise<{ value: T }> {
    for (;;) {
      const main = await this.ssh(signal);
      this.side = this.side.filter((connection) => connection.alive);
      const free = [main, ...this.side].find((connection) => connection.budget.freeForEnding);
      if (!main.budget.serialExec || free || this.side.length >= MAX_SIDE_CONNECTIONS) return { value: use(free ?? main) };
      this.sideConnecting ??= this.connectOnce(this.config.ssh.connectTimeout, 'side').finally(() => {
        this.sideConnecting = undefined;
      });
      try {
        await abortable(
          this.sideConnecting,
          signal,
          () => new AbortedError('waiting for the SSH connection was aborted.', { host: this.config.name, protocol: 'ssh' }),
        );
      } catch (error) {
        if (error instanceof AbortedError) throw error;
        // The main connection works: a side connection refused (MaxStartups) means waiting there.
        return { value: use(main) };
      }
    }
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
    if (this.side.includes(connection)) {
      this.side = this.side.filter((other) => other !== connection);
      connection.markLost(reason);
    }
  }

  /**
   * Closes the connection; whatever still uses it fails with `reason` (default: closed by
   * labwright). The manager can connect again afterwards.
   */
  async close(reason?: Error): Promise<void> {
    const connection = this.current;
    this.current = undefined;
    const side = this.side;
    this.side = [];
    const closedBy = () => reason ?? new ConnectionError('closed', 'the connection was closed by labwright.', { host: this.config.name, protocol: 'ssh' });
    await Promise.all(
      side.map(async (other) => {
        const ended = new Promise<void>((resolve) => other.client.once('close', () => resolve()));
        other.markLost(closedBy());
        await Promise.race([ended, sleep(2_000)]);
      }),
    );
    if (connection) {
      const ended = new Promise<void>((resolve) => connection.client.once('close', () => resolve()));
      connection.markLost(closedBy());
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

  private async connectOnce(connectTimeout = this.config.ssh.connectTimeout, role: 'main' | 'side' = 'main'): Promise<SshConnection> {
    const config = connectTimeout === this.config.ssh.connectTimeout ? this.config : { ...this.config, ssh: { ...this.config.ssh, connectTimeout } };
    const started = Date.now();
    const client = await this.factory.ssh({ config, user: this.user }, this.options.path);
    this.lastConnectMs = Date.now() - started;
    const { maxSessions } = this.config.ssh;
    let budget: ChannelBudget;
    const main = this.current;
    if (role === 'side' && main) {
      // The same server: what the main connection learned holds here too.
      budget = new ChannelBudget(main.budget.capacity, this.config.name, main.budget.source);
    } else if (maxSessions !== undefined) {
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
      if (role === 'side') this.side = this.side.filter((other) => other !== connection);
      connection.markLost(error);
    };
    client.on('error', (error: Error) => lost(messageOf(error)));
    client.on('close', () => lost('the connection closed'));
    client.on('end', () => lost('the server ended the connection'));
    if (role === 'side') {
      if (!main || this.current !== main || !main.alive) {
        // The host's connection was closed (lab closed, a power cut) while this one opened: nobody's.
        const closed = new ConnectionError('closed', 'the connection was closed while a side connection opened.', { host: this.config.name, protocol: 'ssh' });
        connection.markLost(closed);
        throw closed;
      }
      this.side.push(connection);
      this.options.onEvent?.({
        event: 'connected',
        detail: `side connection ${this.side.length} of ${MAX_SIDE_CONNECTIONS}, for an exec or SFTP channel that would wait behind a running one`,
      });
      return connection;
    }
    this.current = connection;
    const serial = budget.serialExec ? `; exec channels one at a time (${software} closes new channels while a command ends, dropbear#321)` : '';
    this.options.onEvent?.({
      event: 'connected',
      detail: `${this.user}@${this.config.address}:${this.config.ssh.port}, MaxSessions ${budget.capacity} (${budget.source})${serial}`,
    });
    return connection;
  }
}
