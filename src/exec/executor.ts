/**
 * The SSH executor (after TARDIS's SSHExecutor, its weak points fixed): many concurrent
 * commands multiplexed over one connection, bounded by the channel budget so that extra
 * commands wait instead of failing; when a command sees the connection broken, the
 * connection is dropped once (only if still current), everyone waits for the single
 * reconnect, and the command is retried up to `commandRetries` times. A non-zero exit is
 * never retried. Shells and SFTP take their channels through here too.
 */
import type { ClientChannel } from 'ssh2';
import type { RemoteHostConfig } from '../config/defineLab.js';
import type { SlotLabel } from '../transport/channelBudget.js';
import type { ConnectionManager, SshConnection } from '../transport/connectionManager.js';
import { isChannelOpenFailure } from '../transport/sessionProbe.js';
import { ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import { openExec, runOnChannel, type ChannelExecOptions, type ChannelExecOutcome, type OpenedExec } from './sshExec.js';

/** Options of an executor command. */
export interface ExecutorOptions extends ChannelExecOptions {
  /** Run through the wrapper program (wrapper mode) when the host configures one. Default true. */
  useWrapper?: boolean;
}

/** A channel held with its budget slot; closing the channel frees the slot. */
export type HeldChannel<T extends { channel: ClientChannel }> = T & {
  connection: SshConnection;
  release: () => void;
};

/** Builds the stdin of a wrapper program: the command, and its own stdin through base64 when given. */
export function wrapperScript(command: string, stdin: string | Buffer | undefined): string {
  if (stdin === undefined) return `${command}\n`;
  const data = Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin);
  return `printf '%s' '${data.toString('base64')}' | base64 -d | {\n${command}\n}\n`;
}

function isConnectionBroken(error: unknown): boolean {
  if (error instanceof ConnectionError) return error.kind === 'closed' || error.kind === 'reset';
  return error instanceof Error && /not usable|not connected|No response from server|socket|ECONNRESET|EPIPE/i.test(error.message);
}

export class SshExecutor {
  constructor(
    private readonly config: RemoteHostConfig,
    private readonly connections: ConnectionManager,
  ) {}

  /**
   * Runs a command on its own channel. Retries after a lost connection (up to
   * ssh.commandRetries); waits for a free channel within the command's timeout.
   */
  async exec(command: string, options: ExecutorOptions): Promise<ChannelExecOutcome> {
    const wrapper = options.useWrapper === false ? undefined : this.config.ssh.wrapper;
    const program = wrapper ?? command;
    const channelOptions: ChannelExecOptions = wrapper ? { ...options, stdin: wrapperScript(command, options.stdin) } : options;
    const deadline = Date.now() + options.timeout;
    const retries = this.config.ssh.commandRetries;
    let lastLoss: Error | undefined;

    for (let attempt = 0; attempt <= retries; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let connection: SshConnection;
      try {
        connection = await this.connections.ssh();
      } catch (error) {
        if (lastLoss && error instanceof LabwrightError) {
          throw new ConnectionError('closed', `the connection was lost under the command and reconnecting failed: ${messageOf(error)}`, {
            host: this.config.name,
            protocol: 'ssh',
            cause: error,
          });
        }
        throw error;
      }
      let held: HeldChannel<OpenedExec>;
      try {
        held = await this.openChannel(connection, { kind: 'exec', name: 'exec' }, Math.max(1, deadline - Date.now()), (client) =>
          openExec(client, program, channelOptions),
        );
      } catch (error) {
        if (isConnectionBroken(error) || !connection.alive) {
          lastLoss = error instanceof Error ? error : new Error(String(error));
          this.connections.invalidate(connection, lastLoss);
          continue;
        }
        throw error;
      }
      const outcome = await runOnChannel(held, { ...channelOptions, timeout: Math.max(1, deadline - Date.now()) }).finally(held.release);
      if (!outcome.lost) return outcome;
      // Closed without an exit status: the connection broke under the command.
      lastLoss = connection.lostReason ?? new Error('the channel closed without an exit status');
      this.connections.invalidate(connection, lastLoss);
    }
    throw new ConnectionError(
      'closed',
      lastLoss
        ? `the connection was lost under the command ${retries + 1} time(s) (last: ${messageOf(lastLoss)}); gave up.`
        : `the command could not start within its ${formatDuration(options.timeout)} timeout.`,
      { host: this.config.name, protocol: 'ssh', hint: 'Check that the device stays up; ssh.commandRetries sets how often labwright retries.' },
    );
  }

  /**
   * Takes a channel slot (waiting up to `timeoutMs`) and opens a channel with `open`.
   * If the server refuses the channel although the budget had room, the budget shrinks
   * and the request waits for a slot again. The slot is freed when the channel closes.
   */
  async openChannel<T extends { channel: ClientChannel }>(
    connection: SshConnection,
    label: SlotLabel,
    timeoutMs: number,
    open: (client: SshConnection['client']) => Promise<T>,
  ): Promise<HeldChannel<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const release = await connection.budget.acquire(label, Math.max(0, deadline - Date.now()));
      try {
        const opened = await open(connection.client);
        release.opened();
        opened.channel.once('close', release);
        return { ...opened, connection, release };
      } catch (error) {
        release();
        if (!isChannelOpenFailure(error) || !connection.alive) throw error;
        if (connection.budget.inUse === 0) {
          throw new ConnectionError('protocol', `the server refuses every session channel (${messageOf(error)}).`, {
            host: this.config.name,
            protocol: 'ssh',
            hint: 'Check MaxSessions in the device\'s sshd_config (0 forbids sessions) and ssh.maxSessions in the lab config.',
          });
        }
        connection.budget.shrinkToInUse();
        if (Date.now() >= deadline) throw error;
      }
    }
  }
}
