/**
 * File transfers of a remote host: the strategy for each method, created once on first
 * use (SFTP on the connection's shared session, SCP over an exec channel, FTP through the
 * network path, nc through the host's command runner), and `put`/`get` as steps with one
 * transfer event each, emitted here and only here.
 */
import type { ClientChannel } from 'ssh2';
import type { RemoteHostConfig } from '../config/defineLab.js';
import type { TransferMethod } from '../config/schema.js';
import { ByteReader } from '../transfer/byteReader.js';
import { FtpTransfer } from '../transfer/ftp.js';
import { NcTransfer } from '../transfer/nc.js';
import { ScpTransfer } from '../transfer/scp.js';
import { SftpTransfer } from '../transfer/sftp.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from '../transfer/types.js';
import type { ConnectionManager } from '../transport/connectionManager.js';
import type { NetworkPath } from '../transport/network.js';
import type { SftpLease } from '../transport/sshConnection.js';
import { LabwrightError, TransferError, messageOf } from '../util/errors.js';
import { abortReason } from '../util/time.js';
import type { HostContext } from './events.js';

/** What a host's transfers need from it. */
export interface RemoteTransfersDeps {
  config: RemoteHostConfig;
  context: HostContext;
  connections: ConnectionManager;
  path: NetworkPath;
  runner: RemoteRunner;
}

export class RemoteTransfers {
  private readonly strategies = new Map<TransferMethod, Promise<TransferStrategy>>();

  constructor(private readonly deps: RemoteTransfersDeps) {}

  private get name(): string {
    return this.deps.config.name;
  }

  /** Copies a local file or directory to the host (`put`) or from it (`get`), as a step with a transfer event. */
  move(direction: 'put' | 'get', source: string, destination: string, options: TransferOptions): Promise<TransferResult> {
    const { context, config } = this.deps;
    const method = options.method ?? config.transfer;
    const [local, remote] = direction === 'put' ? [source, destination] : [destination, source];
    const started = Date.now();
    // Fires when the test ends or the host goes away (a power cycle): the failure then says so.
    const signal = context.signal();
    return context.step(`${this.name}: ${direction} ${source} → ${destination} (${method})`, async () => {
      const report = (fields: { bytes?: number; error?: string }) =>
        context.events.emit({ type: 'transfer', time: Date.now(), host: this.name, direction, method, local, remote, durationMs: Date.now() - started, ...fields });
      // SFTP: the transfer holds the connection's session for as long as it runs.
      let lease: SftpLease | undefined;
      try {
        if (method === 'sftp') lease = await (await this.deps.connections.ssh()).sftp(config.ssh.connectTimeout);
        const strategy = await this.strategy(method);
        const result = direction === 'put' ? await strategy.put(local, remote, options) : await strategy.get(remote, local, options);
        report({ bytes: result.bytes });
        return result;
      } catch (error) {
        if (signal?.aborted) {
          const cut = new TransferError(`${direction} of ${source} was cut: ${abortReason(signal)} (${messageOf(error)}).`, {
            host: this.name,
            protocol: method,
            hint: 'The transfer did not complete; run it again once the host is back.',
            cause: error,
          });
          report({ error: cut.detail });
          throw cut;
        }
        report({ error: messageOf(error) });
        if (error instanceof LabwrightError) throw error;
        throw new TransferError(`${direction} of ${source} failed: ${messageOf(error)}.`, { host: this.name, protocol: method, cause: error });
      } finally {
        lease?.release();
      }
    });
  }

  /** Closes what the transfer methods hold (FTP connections). */
  async close(): Promise<void> {
    const strategies = [...this.strategies.values()];
    this.strategies.clear();
    await Promise.allSettled(strategies.map(async (strategy) => (await strategy).close()));
  }

  /** The strategy for a transfer method, created once on first use. */
  private strategy(method: TransferMethod): Promise<TransferStrategy> {
    let pending = this.strategies.get(method);
    if (!pending) {
      pending = Promise.resolve().then(() => this.create(method));
      this.strategies.set(method, pending);
      pending.catch(() => this.strategies.delete(method));
    }
    return pending;
  }

  private create(method: TransferMethod): TransferStrategy {
    const { config, connections, runner, path } = this.deps;
    switch (method) {
      case 'sftp':
        return new SftpTransfer({
          host: this.name,
          options: config.sftp,
          // move() holds a lease for the transfer: this one is the same session.
          session: async () => {
            const lease = await (await connections.ssh()).sftp(config.ssh.connectTimeout);
            lease.release();
            return lease.sftp;
          },
          runner,
        });
      case 'scp':
        return new ScpTransfer({ host: this.name, options: config.scp, runner, open: (command) => this.openScpChannel(command) });
      case 'ftp':
        return FtpTransfer.fromConfig(config, path, {
          runner,
          // Transfers are reported by move(); FTP adds its control connection's lifecycle.
          onEvent: (event) => {
            if (event.type === 'connection') this.deps.context.events.emit(event);
          },
        });
      case 'nc':
        return new NcTransfer({ host: this.name, address: config.address, options: config.nc, runner, path: async () => path });
    }
  }

  /** An exec channel for the device's scp, under the connection's channel budget. */
  private async openScpChannel(command: string): Promise<{ channel: ClientChannel; reader: ByteReader }> {
    const connection = await this.deps.connections.ssh();
    return connection.openChannel(
      { kind: 'exec', name: 'scp' },
      this.deps.config.ssh.connectTimeout,
      (client) =>
        new Promise<{ channel: ClientChannel; reader: ByteReader }>((resolve, reject) => {
          client.exec(command, (error, channel) => {
            if (error) return reject(error);
            channel.stderr.resume();
            resolve({ channel, reader: new ByteReader(channel) });
          });
        }),
      (opened) => opened.channel,
    );
  }
}
