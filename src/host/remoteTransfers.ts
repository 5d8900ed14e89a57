/**
 * File transfers of a remote host: the strategy for each method, created once on first
 * use (SFTP sessions and SCP channels under the connection's channel budget, FTP through
 * the network path, nc through the host's command runner). `put`/`get` are reported by
 * {@link reportTransfer}, the one place for every host kind.
 */
import type { EventEmitter } from 'node:events';

import type { ClientChannel, SFTPWrapper } from 'ssh2';

import type { RemoteHostConfig } from '../config/defineLab.js';
import type { TransferMethod } from '../config/schema.js';
import { FtpTransfer } from '../transfer/ftp.js';
import { NcTransfer } from '../transfer/nc.js';
import { ScpTransfer } from '../transfer/scp.js';
import { SftpTransfer } from '../transfer/sftp.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from '../transfer/types.js';
import type { Slot, SlotLabel } from '../transport/channelBudget.js';
import type { ConnectionManager } from '../transport/connectionManager.js';
import type { NetworkPath } from '../transport/network.js';
import { isChannelOpenFailure } from '../transport/sessionProbe.js';
import type { SshConnection } from '../transport/sshConnection.js';
import { ConnectionError, TransferError } from '../util/errors.js';
import { anySignal, formatDuration, withTimeout } from '../util/time.js';
import type { HostContext } from './events.js';
import { reportTransfer } from './transfers.js';

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

  /** Copies a local file or directory to the host (`put`) or from it (`get`); the test's own signal always applies. */
  move(direction: 'put' | 'get', source: string, destination: string, options: TransferOptions): Promise<TransferResult> {
    const { context, config } = this.deps;
    const method = options.method ?? config.transfer;
    const [local, remote] = direction === 'put' ? [source, destination] : [destination, source];
    const withSignal = { ...options, signal: anySignal(options.signal, context.signal()) };
    return reportTransfer(context, { host: this.name, direction, method, local, remote }, async () => {
      const strategy = await this.strategy(method);
      try {
        return await (direction === 'put' ? strategy.put(local, remote, withSignal) : strategy.get(remote, local, withSignal));
      } catch (error) {
        throw this.telnetWithoutSsh(method, error);
      }
    });
  }

  /** Closes what the transfer methods hold (FTP connections, idle SFTP sessions). */
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
    const { config, runner, path, context } = this.deps;
    switch (method) {
      case 'sftp':
        return new SftpTransfer({
          host: this.name,
          options: config.sftp,
          runner,
          open: async (slotWaitMs) => {
            const { opened, onLost, alive, slot } = await this.transferChannel(
              { kind: 'sftp', name: 'sftp' },
              slotWaitMs,
              (client) =>
                new Promise<{ channel: SFTPWrapper }>((resolve, reject) =>
                  client.sftp((error, sftp) => (error ? reject(sftpRefused(this.name, error)) : resolve({ channel: sftp }))),
                ),
            );
            return { sftp: opened.channel, onLost, alive, idle: slot.idle };
          },
        });
      case 'scp':
        return new ScpTransfer({
          host: this.name,
          options: config.scp,
          runner,
          open: async (command, slotWaitMs) => {
            const { opened, onLost } = await this.transferChannel(
              { kind: 'exec', name: 'scp' },
              slotWaitMs,
              (client) =>
                new Promise<{ channel: ClientChannel }>((resolve, reject) =>
                  client.exec(command, (error, channel) => (error ? reject(error) : resolve({ channel }))),
                ),
            );
            return { channel: opened.channel, onLost };
          },
        });
      case 'ftp':
        return FtpTransfer.fromConfig(config, path, {
          runner,
          onConnection: (event, detail) =>
            context.events.emit({ type: 'connection', time: Date.now(), host: this.name, protocol: 'ftp', event, ...(detail ? { detail } : {}) }),
        });
      case 'nc':
        return new NcTransfer({ host: this.name, address: config.address, options: config.nc, runner, path: async () => path });
      default:
        throw new TransferError(`unknown transfer method ${JSON.stringify(method)}.`, {
          host: this.name,
          hint: 'Use one of sftp, scp, ftp, nc.',
          kind: 'unsupported',
        });
    }
  }

  /**
   * A channel for one transfer under the connection's channel budget (waiting up to
   * `slotWaitMs` for a slot, then ssh.connectTimeout for the channel), with the
   * connection's loss for the transfer to watch and the slot to mark idle.
   */
  private async transferChannel<T extends { channel: { end(): unknown; once(event: 'close', listener: () => void): unknown } }>(
    label: SlotLabel,
    slotWaitMs: number,
    open: (client: SshConnection['client']) => Promise<T>,
  ): Promise<{ opened: T; onLost: SshConnection['onLost']; alive: () => boolean; slot: Slot }> {
    const { connectTimeout } = this.deps.config.ssh;
    // The connection is chosen and the slot taken in one step (see withEndingConnection).
    let connection!: SshConnection;
    const { value: opening } = await this.deps.connections.withEndingConnection(undefined, (picked) => {
      connection = picked;
      return picked.openChannel(label, slotWaitMs, open, (opened) => opened.channel as unknown as EventEmitter);
    });
    // ssh2 never answers a channel request on a dead connection: bound the wait.
    const bound = slotWaitMs + connectTimeout;
    const opened = await withTimeout(opening, bound, () => {
      // A channel that opens after all is nobody's: end it so that its slot comes back.
      opening.then(
        (late) => late.channel.end(),
        () => undefined,
      );
      return new ConnectionError('timeout', `no ${label.kind} channel opened within ${formatDuration(bound)}.`, {
        host: this.name,
        protocol: 'ssh',
        hint: 'Check that the device is up.',
      });
    });
    return { opened, onLost: (listener) => connection.onLost(listener), alive: () => connection.alive, slot: opened.slot };
  }

  /** sftp and scp need SSH: on a telnet host whose SSH cannot be reached, say so rather than only "connection refused". */
  private telnetWithoutSsh(method: TransferMethod, error: unknown): unknown {
    const { config } = this.deps;
    if (config.term !== 'telnet' || (method !== 'sftp' && method !== 'scp') || !(error instanceof ConnectionError)) return error;
    return new TransferError(
      `${method} needs an SSH server on the device, and "${this.name}" is a telnet host whose SSH at ${config.address}:${config.ssh.port} cannot be used: ${error.detail}`,
      {
        host: this.name,
        protocol: method,
        hint: 'Use method "ftp" or "nc" on this host, or set its ssh options if the device also runs an SSH server.',
        cause: error,
        kind: 'unsupported',
      },
    );
  }
}

/** A subsystem refusal (no SFTP server) as opposed to a channel refusal (MaxSessions), which openChannel handles. */
function sftpRefused(host: string, error: Error): Error {
  if (isChannelOpenFailure(error)) return error;
  return new ConnectionError('protocol', `the SFTP subsystem could not start: ${error.message}.`, {
    host,
    protocol: 'sftp',
    hint: 'Check that the device runs an SFTP server (Subsystem sftp in sshd_config), or use transfer: "scp".',
    cause: error,
  });
}
