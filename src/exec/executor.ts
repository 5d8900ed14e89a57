/**
 * The SSH executor: many concurrent
 * commands multiplexed over one connection, bounded by the channel budget so that extra
 * commands wait instead of failing; when a command sees the connection broken, the
 * connection is dropped once (only if still current), everyone waits for the single
 * reconnect, and the command is retried up to `commandRetries` times. A non-zero exit is
 * never retried. Channels are opened under the connection's budget (SshConnection.openChannel).
 */
import type { RemoteHostConfig } from '../config/defineLab.js';
import type { ConnectionManager } from '../transport/connectionManager.js';
import type { HeldChannel, SshConnection } from '../transport/sshConnection.js';
import { AbortedError, ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { anySignal, formatDuration } from '../util/time.js';
import { type ChannelExecOptions, type ChannelExecOutcome, type OpenedExec, openExec, runOnChannel } from './sshExec.js';

/** Options of an executor command. */
export interface ExecutorOptions extends ChannelExecOptions {
  /** Run through the wrapper program (wrapper mode) when the host configures one. Default true. */
  useWrapper?: boolean;
}

/** How long after a command's timeout its connection or channel wait is given up. */
const BOUND_GRACE_MS = 250;

/** Builds the stdin of a wrapper program: the command, and its own stdin through base64 when given. */
export function wrapperScript(command: string, stdin: string | Buffer | undefined): string {
  if (stdin === undefined) return `${command}\n`;
  const data = Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin);
  return `printf '%s' '${data.toString('base64')}' | base64 -d | {\n${command}\n}\n`;
}

/** Whether an error means the connection broke (retry on a new one), as classified where it arose. */
function isConnectionBroken(error: unknown): boolean {
  return error instanceof ConnectionError && (error.kind === 'closed' || error.kind === 'reset');
}

export class SshExecutor {
  constructor(
    private readonly config: RemoteHostConfig,
    private readonly connections: ConnectionManager,
  ) {}

  /**
   * Runs a command on its own channel. Retries after a lost connection (up to
   * ssh.commandRetries); waits for a free channel within the command's timeout. `command`
   * may be built per connection, from what its server allows (`serialExec`): it is then
   * built once the connection is up, so nothing connects twice.
   */
  async exec(command: string | ((serialExec: boolean) => string), options: ExecutorOptions): Promise<ChannelExecOutcome> {
    const wrapper = options.useWrapper === false ? undefined : this.config.ssh.wrapper;
    const deadline = Date.now() + options.timeout;
    const retries = this.config.ssh.commandRetries;
    const { signal } = options;
    let lastLoss: Error | undefined;

    const started = Date.now();
    // Getting a connection and a channel count against the command's timeout too: on a
    // frozen device a channel open is never answered (until keepalives give up). The grace
    // lets a wait for a channel slot end first with its own, more telling error.
    const bound = AbortSignal.timeout(Math.max(1, options.timeout) + BOUND_GRACE_MS);
    const waiting = anySignal(signal, bound)!;
    const timedOut = (): ChannelExecOutcome => ({
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      exitCode: null,
      signal: undefined,
      timedOut: true,
      aborted: false,
      lost: false,
      durationMs: Date.now() - started,
    });

    for (let attempt = 0; attempt <= retries; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let connection!: SshConnection;
      let channelOptions!: ChannelExecOptions;
      let opening: Promise<HeldChannel<OpenedExec>>;
      try {
        // The connection is chosen and the slot taken in one step (see withEndingConnection).
        ({ value: opening } = await this.connections.withEndingConnection(waiting, (picked) => {
          connection = picked;
          const text = typeof command === 'string' ? command : command(picked.budget.serialExec);
          const program = wrapper ?? text;
          channelOptions = wrapper ? { ...options, stdin: wrapperScript(text, options.stdin) } : options;
          const chosen = channelOptions;
          return picked.openChannel(
            { kind: 'exec', name: 'exec' },
            Math.max(1, deadline - Date.now()),
            (client) => openExec(client, program, chosen),
            (opened) => opened.channel,
            waiting,
          );
        }));
      } catch (error) {
        if (bound.aborted && !signal?.aborted) return timedOut();
        if (lastLoss && error instanceof LabwrightError && !(error instanceof AbortedError)) {
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
        held = await opening;
      } catch (error) {
        if (bound.aborted && !signal?.aborted) return timedOut();
        // Only a connection that broke is retried; a full budget or a refusal is reported as it is.
        if (!isConnectionBroken(error)) throw error;
        lastLoss = error as Error;
        this.connections.invalidate(connection, lastLoss);
        continue;
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
}
