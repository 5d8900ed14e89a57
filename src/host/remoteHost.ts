/**
 * A remote lab host: shells over SSH (or telnet), stateless exec multiplexed over the SSH
 * connection (or a pool of telnet shells), transfers by method, port forwards and shares.
 * Everything connects on first use and goes through the host's network path (direct or
 * through hops). Each job lives in its own file; this class wires them together.
 */
import type { RemoteHostConfig } from '../config/defineLab.js';
import { SshExecutor } from '../exec/executor.js';
import type { ShellTransport } from '../session/transport.js';
import type { TransferOptions, TransferResult } from '../transfer/types.js';
import type { Share, ShareOptions } from '../share/share.js';
import { ConnectionManager, type ConnectionFactory } from '../transport/connectionManager.js';
import type { Forward, IncomingHandler } from '../transport/forwarding.js';
import type { NetworkPath } from '../transport/network.js';
import type { HostContext } from './events.js';
import { Host, type ExecRequest } from './host.js';
import { RemoteForwards, type LocalForwardOptions, type RemoteForwardOptions } from './remoteForwards.js';
import { commandRunner, execResult, sshExecBackend, type ExecBackend } from './remoteExec.js';
import { remoteShellTransport, telnetShellTransport } from './remoteShells.js';
import { RemoteTransfers } from './remoteTransfers.js';
import type { CommandResult } from './results.js';
import { ShellExecBackend, pooledShells } from './telnetExec.js';
import { HostConsole, waitForSsh } from './console.js';
import type { ShellSession, ShellSessionOptions } from '../session/shellSession.js';
import { LabwrightError } from '../util/errors.js';

export type { LocalForwardOptions, RemoteForwardOptions } from './remoteForwards.js';

/** How a remote host reaches its device; provided by the lab. */
export interface RemoteHostDeps {
  /** The network path: direct, or the hop chain (it connects on first use). */
  path: NetworkPath;
  /** Test-double seam for raw connections. */
  factory?: ConnectionFactory | undefined;
}

export class RemoteHost extends Host {
  readonly kind = 'remote' as const;
  declare readonly config: RemoteHostConfig;
  /** The host's SSH connection manager. */
  readonly connections: ConnectionManager;
  /** Concurrent commands over the SSH connection. */
  readonly executor: SshExecutor;
  /** How the host is reached (`direct`, or `via bastion → mid`). */
  readonly path: NetworkPath;
  private readonly backend: ExecBackend;
  private readonly transfers: RemoteTransfers;
  private readonly forwards: RemoteForwards;

  constructor(config: RemoteHostConfig, context: HostContext, deps: RemoteHostDeps) {
    super(config, context);
    // From here on the host's own context: its steps check the host's leases first.
    context = this.context;
    this.path = deps.path;
    this.connections = new ConnectionManager(config, {
      path: deps.path,
      factory: deps.factory,
      onEvent: ({ event, detail }) =>
        context.events.emit({ type: 'connection', time: Date.now(), host: config.name, protocol: 'ssh', event, ...(detail ? { detail } : {}) }),
    });
    this.executor = new SshExecutor(config, this.connections);
    this.backend = this.execBackend(deps.path);
    const runner = commandRunner(this.backend, () => context.signal());
    this.transfers = new RemoteTransfers({ config, context, connections: this.connections, path: deps.path, runner });
    this.forwards = new RemoteForwards({ host: config.name, context, connections: this.connections, runner, commandTimeout: () => this.commandTimeout });
  }

  /**
   * What runs exec: SSH channels; a pool of telnet shells on telnet hosts; the console's
   * shell, one command at a time, on a console host without an address for SSH.
   */
  private execBackend(path: NetworkPath): ExecBackend {
    const { config, context } = this;
    if (config.term === 'telnet') {
      return new ShellExecBackend(
        'telnet',
        config.name,
        pooledShells({
          transport: telnetShellTransport(config, path),
          shell: config.shell,
          size: config.telnet.execPoolSize,
          observer: (name) => ({
            lifecycle: (event, detail) =>
              context.events.emit({ type: 'session', time: Date.now(), host: config.name, session: name, protocol: 'telnet', event, ...(detail ? { detail } : {}) }),
          }),
        }),
      );
    }
    if (config.term === 'console' && !config.address) {
      return new ShellExecBackend('console', config.name, {
        run: (script, options) => this.console.shellSessionInstance.run(script, options),
        close: async () => {},
      });
    }
    return sshExecBackend(config, this.executor);
  }

  protected override get execProtocol(): 'ssh' | 'telnet' | 'console' {
    return this.backend.protocol;
  }

  // ---- console (serial consoles): host.console, and the shell of term: 'console' hosts ----
  private consoleInstance: HostConsole | undefined;

  /** The host's serial console (config `console`); throws a clear error when it has none. */
  get console(): HostConsole {
    this.consoleInstance ??= new HostConsole(this.config, this.context, {
      path: this.path,
      createShell: (name, transport, exclusive) => super.createShell(name, transport, exclusive),
      sshReady: this.config.term === 'telnet' ? undefined : (timeout) => waitForSsh(this.name, this.executor, timeout),
    });
    return this.consoleInstance;
  }

  /** On term: 'console' hosts the default shell is the console's shell mode (one per console). */
  protected override createShell(name: string, transport?: ShellTransport, exclusive?: ShellSessionOptions['exclusive']): ShellSession {
    if (this.config.term !== 'console' || transport) return super.createShell(name, transport, exclusive);
    if (name !== 'default') {
      throw new LabwrightError(`a serial console has one shell, so session "${name}" cannot be opened on it.`, {
        host: this.name,
        protocol: 'console',
        hint: 'Use host.run() for the console shell, or give the board SSH or telnet (term) for parallel sessions.',
      });
    }
    return this.console.shellSessionInstance;
  }
  // ---- end console ----
  protected shellTransport(sessionName: string): ShellTransport {
    if (this.config.term === 'console') return this.console.shellTransport();
    return remoteShellTransport(this.config, this.connections, this.path, sessionName);
  }

  protected async execute(command: string, request: ExecRequest): Promise<CommandResult> {
    return execResult(this.name, this.backend.protocol, command, request.timeout, await this.backend.run(command, request));
  }

  put(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.transfers.move('put', localPath, remotePath, options);
  }

  get(remotePath: string, localPath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.transfers.move('get', remotePath, localPath, options);
  }

  /**
   * Local port forward: connections to 127.0.0.1:<forward.port> on the runner reach
   * `address:port` as seen from this host. Closed with the host.
   */
  forwardLocal(address: string, port: number, options: LocalForwardOptions = {}): Promise<Forward> {
    this.context.fence?.();
    return this.forwards.local(address, port, options);
  }

  /**
   * Remote port forward: the device listens on `bindAddress:<forward.port>` (loopback by
   * default) and connections reach `localAddress:localPort` as seen from the runner.
   */
  forwardRemote(localAddress: string, localPort: number, options: RemoteForwardOptions = {}): Promise<Forward> {
    return this.forwards.remote(localAddress, localPort, options);
  }

  /** Remote port forward whose connections are handled in-process (the reverse SFTP share uses it). */
  forwardRemoteTo(handler: IncomingHandler, options: RemoteForwardOptions = {}): Promise<Forward> {
    this.context.fence?.();
    return this.forwards.remoteTo(handler, options);
  }

  /**
   * Shares a runner folder with this host over SFTP, with no SSH server on the runner: the
   * device's sshd listens on its loopback (`share.remotePort`) and every connection is
   * served in-process, confined to `localDir`, for the one-time key placed on the device.
   * `share.sftpCommand()` / `share.sshfsCommand(mountPoint)` give the command lines to run
   * there. Stopped by `share.stop()` or when the host closes.
   */
  share(localDir: string, options: ShareOptions = {}): Promise<Share> {
    return this.forwards.share(localDir, options);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.consoleInstance?.close();
    await this.forwards.close();
    await this.transfers.close();
    await this.backend.close();
    await this.connections.close();
  }
}
