/**
 * A remote lab host: shells over SSH (or telnet), stateless exec multiplexed over the SSH
 * connection, transfers by method, port forwards. Everything connects on first use and
 * goes through the host's network path (direct or through hops).
 */
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import type { RemoteHostConfig } from '../config/defineLab.js';
import type { TransferMethod } from '../config/schema.js';
import { SshExecutor, type ClosableChannel } from '../exec/executor.js';
import { ShellPool } from '../session/shellPool.js';
import { SshShellTransport } from '../session/sshShell.js';
import { TelnetShellTransport } from '../session/telnetShell.js';
import { LineSplitter, cleanText } from '../session/text.js';
import type { ShellTransport } from '../session/transport.js';
import { FtpTransfer } from '../transfer/ftp.js';
import { NcTransfer } from '../transfer/nc.js';
import { ScpTransfer } from '../transfer/scp.js';
import { SftpTransfer } from '../transfer/sftp.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from '../transfer/types.js';
import type { SlotLabel } from '../transport/channelBudget.js';
import { ConnectionManager, type ConnectionFactory, type SshConnection } from '../transport/connectionManager.js';
import { pipeToLocal, startLocalForward, startRemoteForward, type Forward, type IncomingHandler } from '../transport/forwarding.js';
import { DeferredPath, type NetworkPath } from '../transport/network.js';
import { ConnectionError, LabwrightError, TransferError, messageOf } from '../util/errors.js';
import { formatDuration, withTimeout } from '../util/time.js';
import { reportCommand } from './commands.js';
import type { HostContext } from './events.js';
import { reportTransfer } from './transfers.js';
import { Host, type ExecOptions } from './host.js';
import { CommandResult, statusOf } from './results.js';
import { Share, type ShareOptions } from './share.js';
import { execToken, splitTelnetExec, telnetExecScript } from './telnetExec.js';

/** How a remote host reaches its device; provided by the lab. */
export interface RemoteHostDeps {
  /** The network path (direct, or the hop chain), resolved on first connection. */
  path: () => Promise<NetworkPath>;
  /** Test-double seam for raw connections. */
  factory?: ConnectionFactory | undefined;
}

/** Options of a local forward. */
export interface LocalForwardOptions {
  /** Runner port to listen on (127.0.0.1); default: a free one. */
  localPort?: number;
}

/** Options of a remote forward. */
export interface RemoteForwardOptions {
  /** Address the device listens on; default 127.0.0.1 (only the device itself can connect). */
  bindAddress?: string;
  /** Device port; default: a free one chosen by the device. */
  remotePort?: number;
}

export class RemoteHost extends Host {
  readonly kind = 'remote' as const;
  declare readonly config: RemoteHostConfig;
  /** The host's SSH connection manager. */
  readonly connections: ConnectionManager;
  /** Concurrent commands over the SSH connection. */
  readonly executor: SshExecutor;
  private readonly transfers = new Map<TransferMethod, Promise<TransferStrategy>>();
  private readonly forwards = new Set<Forward>();
  private readonly shares = new Set<Share>();
  /** The network path, resolved (hops built) on first use. */
  private readonly path: DeferredPath;
  /** Logged-in shells for exec on telnet hosts. */
  private execPool: ShellPool | undefined;

  constructor(
    config: RemoteHostConfig,
    context: HostContext,
    private readonly deps: RemoteHostDeps,
  ) {
    super(config, context);
    this.connections = new ConnectionManager(config, {
      path: deps.path,
      factory: deps.factory,
      onEvent: ({ event, detail }) =>
        context.events.emit({ type: 'connection', time: Date.now(), host: config.name, protocol: 'ssh', event, ...(detail ? { detail } : {}) }),
    });
    this.executor = new SshExecutor(config, this.connections);
    this.path = new DeferredPath(deps.path);
  }

  private telnetTransport(): TelnetShellTransport {
    const { config } = this;
    return new TelnetShellTransport({
      host: this.name,
      address: config.address,
      path: this.path,
      telnet: config.telnet,
      user: config.user,
      password: config.users[config.user]?.password,
    });
  }

  protected shellTransport(sessionName: string): ShellTransport {
    if (this.config.term === 'telnet') return this.telnetTransport();
    const { ssh, shell } = this.config;
    return new SshShellTransport({
      host: this.name,
      session: sessionName,
      connections: this.connections,
      executor: this.executor,
      termType: ssh.termType,
      cols: ssh.cols,
      rows: ssh.rows,
      env: ssh.env,
      command: shell.command,
      openTimeout: shell.openTimeout,
    });
  }

  exec(command: string, options: ExecOptions = {}): Promise<CommandResult> {
    return this.config.term === 'telnet' ? this.telnetExec(command, options) : this.sshExec(command, options);
  }

  private sshExec(command: string, options: ExecOptions): Promise<CommandResult> {
    const timeout = options.timeout ?? this.commandTimeout;
    const where = { host: this.name, session: 'exec', protocol: 'ssh' as const };
    return reportCommand(this.context, where, command, async (onLine) => {
      const lines = new LineSplitter((line) => onLine(cleanText(line)));
      const { ssh } = this.config;
      const outcome = await this.executor.exec(command, {
        timeout,
        env: { ...ssh.env, ...options.env },
        stdin: options.stdin,
        pty: options.pty ? { term: ssh.termType, cols: ssh.cols, rows: ssh.rows } : undefined,
        onStdout: (chunk) => lines.push(chunk.toString('utf8')),
      });
      lines.flush();
      const error = outcome.timedOut
        ? `timed out after ${timeout} ms; the remote command was interrupted and its channel closed`
        : outcome.signal
          ? `killed by signal ${outcome.signal}`
          : undefined;
      return new CommandResult({
        ...where,
        command,
        output: cleanText(outcome.stdout.toString('utf8')),
        outputBytes: outcome.stdout,
        exitCode: outcome.exitCode,
        status: error ? 'error' : statusOf(outcome.exitCode),
        durationMs: outcome.durationMs,
        timedOut: outcome.timedOut,
        error,
        stderr: cleanText(outcome.stderr.toString('utf8')),
        signal: outcome.signal,
      });
    });
  }

  /** The pool of logged-in shells that runs exec on telnet hosts. */
  private get pool(): ShellPool {
    this.execPool ??= new ShellPool({
      transport: this.telnetTransport(),
      shell: this.config.shell,
      size: this.config.telnet.execPoolSize,
      observer: (name) => ({
        lifecycle: (event, detail) =>
          this.context.events.emit({ type: 'session', time: Date.now(), host: this.name, session: name, protocol: 'telnet', event, ...(detail ? { detail } : {}) }),
      }),
    });
    return this.execPool;
  }

  /** exec on a telnet host: a subshell on a pooled shell, stderr kept apart. */
  private async runOnPool(command: string, options: ExecOptions, timeout: number, onLine?: (line: string) => void) {
    const token = execToken();
    const outcome = await this.pool.run(telnetExecScript(command, options, token), { timeout, onLine });
    const { stdout, stderr } = splitTelnetExec(outcome.outputBytes, token);
    return { outcome, stdout, stderr };
  }

  private telnetExec(command: string, options: ExecOptions): Promise<CommandResult> {
    const timeout = options.timeout ?? this.commandTimeout;
    const where = { host: this.name, session: 'exec', protocol: 'telnet' as const };
    return reportCommand(this.context, where, command, async (onLine) => {
      let inStderr = false;
      const { outcome, stdout, stderr } = await this.runOnPool(command, options, timeout, (line) => {
        if (/^LWSE_[0-9a-f]{12}$/.test(line)) inStderr = true;
        else if (!inStderr) onLine(line);
      });
      return new CommandResult({
        ...where,
        command,
        output: cleanText(stdout.toString('utf8')),
        outputBytes: stdout,
        exitCode: outcome.exitCode,
        status: outcome.error ? 'error' : statusOf(outcome.exitCode),
        durationMs: outcome.durationMs,
        timedOut: outcome.timedOut,
        error: outcome.error,
        stderr: cleanText(stderr.toString('utf8')),
      });
    });
  }

  /** Runs helper commands for transfer methods: SSH exec, or the telnet exec pool. */
  protected get runner(): RemoteRunner {
    if (this.config.term === 'telnet') {
      return {
        run: async (command, { timeout, stdin }) => {
          const { outcome, stdout, stderr } = await this.runOnPool(command, { stdin }, timeout);
          return { exitCode: outcome.exitCode, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') };
        },
      };
    }
    return {
      run: async (command, { timeout, stdin }) => {
        const outcome = await this.executor.exec(command, { timeout, stdin });
        return { exitCode: outcome.exitCode, stdout: outcome.stdout.toString('utf8'), stderr: outcome.stderr.toString('utf8') };
      },
    };
  }

  /** The strategy for a transfer method, created once on first use. */
  protected transfer(method: TransferMethod): Promise<TransferStrategy> {
    let pending = this.transfers.get(method);
    if (!pending) {
      pending = this.createTransfer(method);
      this.transfers.set(method, pending);
      pending.catch(() => this.transfers.delete(method));
    }
    return pending;
  }

  private async createTransfer(method: TransferMethod): Promise<TransferStrategy> {
    switch (method) {
      case 'sftp':
        return new SftpTransfer({
          host: this.name,
          options: this.config.sftp,
          runner: this.runner,
          open: async (slotWaitMs) => {
            const { opened, onLost, alive } = await this.transferChannel({ kind: 'sftp', name: 'sftp' }, slotWaitMs, (client) =>
              new Promise<{ channel: SFTPWrapper }>((resolve, reject) => client.sftp((error, sftp) => (error ? reject(error) : resolve({ channel: sftp })))),
            ).catch((error: unknown) => {
              if (error instanceof LabwrightError) throw error;
              throw new ConnectionError('protocol', `the SFTP subsystem could not start: ${messageOf(error)}.`, {
                host: this.name,
                protocol: 'sftp',
                hint: 'Check that the device runs an SFTP server (Subsystem sftp in sshd_config), or use transfer: "scp".',
                cause: error,
              });
            });
            return { sftp: opened.channel, onLost, alive };
          },
        });
      case 'scp':
        return new ScpTransfer({
          host: this.name,
          options: this.config.scp,
          runner: this.runner,
          open: async (command, slotWaitMs) => {
            const { opened, onLost } = await this.transferChannel({ kind: 'exec', name: 'scp' }, slotWaitMs, (client) =>
              new Promise<{ channel: ClientChannel }>((resolve, reject) => client.exec(command, (error, channel) => (error ? reject(error) : resolve({ channel })))),
            );
            return { channel: opened.channel, onLost };
          },
        });
      case 'ftp':
        return FtpTransfer.fromConfig(this.config, this.path, {
          runner: this.runner,
          onConnection: (event, detail) => this.context.events.emit({ type: 'connection', time: Date.now(), host: this.name, protocol: 'ftp', event, ...(detail ? { detail } : {}) }),
        });
      case 'nc':
        return new NcTransfer({ host: this.name, address: this.config.address, options: this.config.nc, runner: this.runner, path: async () => this.path });
      default:
        throw new TransferError(`unknown transfer method ${JSON.stringify(method)}.`, { host: this.name, hint: 'Use one of sftp, scp, ftp, nc.', kind: 'unsupported' });
    }
  }

  /**
   * A channel for one transfer under the connection's channel budget (waiting up to
   * `slotWaitMs` for a slot, then ssh.connectTimeout for the channel), with the
   * connection's loss for the transfer to watch.
   */
  private async transferChannel<T extends { channel: ClosableChannel & { end(): unknown } }>(label: SlotLabel, slotWaitMs: number, open: (client: SshConnection['client']) => Promise<T>) {
    const { connectTimeout } = this.config.ssh;
    const connection = await this.connections.ssh();
    const opening = this.executor.openChannel(connection, label, slotWaitMs, (client) => {
      try {
        return open(client);
      } catch (error) {
        return Promise.reject(error);
      }
    });
    // ssh2 never answers a channel request on a dead connection: bound the wait.
    const bound = slotWaitMs + connectTimeout;
    const opened = await withTimeout(opening, bound, () => {
      // A channel that opens after all is nobody's: end it so that its slot comes back.
      opening.then((late) => late.channel.end(), () => undefined);
      return new ConnectionError('timeout', `no ${label.kind} channel opened within ${formatDuration(bound)}.`, { host: this.name, protocol: 'ssh', hint: 'Check that the device is up.' });
    });
    return { opened, onLost: (listener: (error: Error) => void) => connection.onLost(listener), alive: () => connection.alive };
  }

  put(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.move('put', localPath, remotePath, options);
  }

  get(remotePath: string, localPath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.move('get', remotePath, localPath, options);
  }

  private move(direction: 'put' | 'get', source: string, destination: string, options: TransferOptions): Promise<TransferResult> {
    const method = options.method ?? this.config.transfer;
    const [local, remote] = direction === 'put' ? [source, destination] : [destination, source];
    return reportTransfer(this.context, { host: this.name, direction, method, local, remote }, async () => {
      const strategy = await this.transfer(method);
      try {
        return await (direction === 'put' ? strategy.put(local, remote, options) : strategy.get(remote, local, options));
      } catch (error) {
        throw this.telnetWithoutSsh(method, error);
      }
    });
  }

  /** sftp and scp need SSH: on a telnet host whose SSH cannot be reached, say so rather than only "connection refused". */
  private telnetWithoutSsh(method: TransferMethod, error: unknown): unknown {
    if (this.config.term !== 'telnet' || (method !== 'sftp' && method !== 'scp') || !(error instanceof ConnectionError)) return error;
    const { address, ssh } = this.config;
    return new TransferError(`${method} needs an SSH server on the device, and "${this.name}" is a telnet host whose SSH at ${address}:${ssh.port} cannot be used: ${error.detail}`, {
      host: this.name,
      protocol: method,
      hint: 'Use method "ftp" or "nc" on this host, or set its ssh options if the device also runs an SSH server.',
      cause: error,
      kind: 'unsupported',
    });
  }

  /**
   * Local port forward: connections to 127.0.0.1:<forward.port> on the runner reach
   * `address:port` as seen from this host. Closed with the host.
   */
  async forwardLocal(address: string, port: number, options: LocalForwardOptions = {}): Promise<Forward> {
    return this.track(await startLocalForward(this.connections, this.name, address, port, options.localPort ?? 0));
  }

  /**
   * Remote port forward: the device listens on `bindAddress:<forward.port>` (loopback by
   * default) and connections reach `localAddress:localPort` as seen from the runner.
   */
  async forwardRemote(localAddress: string, localPort: number, options: RemoteForwardOptions = {}): Promise<Forward> {
    return this.forwardRemoteTo(pipeToLocal(localAddress, localPort), options);
  }

  /** Remote port forward whose connections are handled in-process (the reverse SFTP share uses it). */
  async forwardRemoteTo(handler: IncomingHandler, options: RemoteForwardOptions = {}): Promise<Forward> {
    return this.track(await startRemoteForward(this.connections, this.name, { ...options, handler }));
  }

  /**
   * Shares a runner folder with this host over SFTP, with no SSH server on the runner: the
   * device's sshd listens on its loopback (`share.remotePort`) and every connection is
   * served in-process, confined to `localDir`, for the one-time key placed on the device.
   * `share.sftpCommand()` / `share.sshfsCommand(mountPoint)` give the command lines to run
   * there. Stopped by `share.stop()` or when the host closes.
   */
  async share(localDir: string, options: ShareOptions = {}): Promise<Share> {
    return this.context.step(`${this.name}: share ${localDir}${options.readOnly ? ' (read-only)' : ''}`, async () => {
      const started: { share?: Share } = {};
      const share = await Share.start(localDir, options, {
        host: this.name,
        runner: this.runner,
        forward: (handler, remotePort) => this.forwardRemoteTo(handler, remotePort === undefined ? {} : { remotePort }),
        commandTimeout: this.commandTimeout,
        onEvent: (event, detail) => {
          if (event === 'closed' && started.share) this.shares.delete(started.share);
          this.context.events.emit({ type: 'connection', time: Date.now(), host: this.name, protocol: 'share', event, detail });
        },
      });
      started.share = share;
      this.shares.add(share);
      return share;
    });
  }

  private track(forward: Forward): Forward {
    this.forwards.add(forward);
    return {
      port: forward.port,
      close: async () => {
        this.forwards.delete(forward);
        await forward.close();
      },
    };
  }

  override async close(): Promise<void> {
    await super.close();
    // Shares first: removing their keys needs the connection, and they own forwards.
    await Promise.allSettled([...this.shares].map((share) => share.stop()));
    this.shares.clear();
    await Promise.allSettled([...this.forwards].map((forward) => forward.close()));
    this.forwards.clear();
    await Promise.allSettled([...this.transfers.values()].map(async (transfer) => (await transfer).close()));
    this.transfers.clear();
    const pool = this.execPool;
    this.execPool = undefined;
    await pool?.close();
    await this.connections.close();
  }
}
