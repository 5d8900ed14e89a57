/**
 * A remote lab host: shells over SSH (or telnet), stateless exec multiplexed over the SSH
 * connection (or a pool of telnet shells), transfers by method, port forwards and shares.
 * Everything connects on first use and goes through the host's network path (direct or
 * through hops). Each job lives in its own file; this class wires them together.
 */
import type { RemoteHostConfig } from '../config/defineLab.js';
import { SshExecutor } from '../exec/executor.js';
import type { Pdu } from '../power/pdu.js';
import type { PowerAction, PowerState } from '../power/types.js';
import type { SessionObserver, ShellSession, ShellSessionOptions } from '../session/shellSession.js';
import type { ShellTransport } from '../session/transport.js';
import type { Share, ShareOptions } from '../share/share.js';
import type { TransferOptions, TransferResult } from '../transfer/types.js';
import { type ConnectionFactory, ConnectionManager } from '../transport/connectionManager.js';
import type { Forward, IncomingHandler } from '../transport/forwarding.js';
import type { NetworkPath } from '../transport/network.js';
import { ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { anySignal, formatDuration } from '../util/time.js';
import { type ConsoleWatch, HostConsole, waitForSsh } from './console.js';
import type { HostContext } from './events.js';
import { type ExecRequest, Host } from './host.js';
import {
  HostPower,
  type PowerOptions,
  type RebootOptions,
  type RebootResult,
  type RecoveryReport,
  type ReleaseStep,
  type WaitUntilUpOptions,
} from './hostPower.js';
import type { HostState } from './lifecycle.js';
import { commandRunner, type ExecBackend, execResult, sshExecBackend } from './remoteExec.js';
import { type LocalForwardOptions, type RemoteForwardOptions, RemoteForwards } from './remoteForwards.js';
import { remoteShellTransport, telnetShellTransport } from './remoteShells.js';
import { RemoteTransfers } from './remoteTransfers.js';
import type { CommandResult } from './results.js';
import { pooledShells, ShellExecBackend } from './telnetExec.js';
import type { UpCheck, UpTimings } from './waitUntilUp.js';

export type { LocalForwardOptions, RemoteForwardOptions } from './remoteForwards.js';

/** Bound on the first SSH attempt while waiting for a host to come back (doubled while unanswered). */
const FIRST_PROBE_MS = 2_000;
/** Longest wait for a console's login prompt in one round of checks (progress shows between rounds). */
const CONSOLE_ROUND_MS = 5_000;

declare module '../config/schema.js' {
  /** A recovery function (`lifecycle.recover`) receives the RemoteHost. */
  interface RecoveryTypes {
    host: RemoteHost;
  }
}

/** How a remote host reaches its device; provided by the lab. */
export interface RemoteHostDeps {
  /** The network path: direct, or the hop chain (it connects on first use). */
  path: NetworkPath;
  /** Test-double seam for raw connections. */
  factory?: ConnectionFactory | undefined;
  /** The host's power controller (shared with the other hosts on its PDU), if it has power control. */
  pdu?: Pdu | undefined;
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
  private readonly powerControl: HostPower;
  /** The console's watch for the login prompt, from the start of an outage until the host is up. */
  private bootWatch: ConsoleWatch | undefined;
  /** The path without the lifecycle's gate: a console's terminal server is not the device, and stays reachable while the device's power is cut. */
  private readonly consolePath: NetworkPath;

  constructor(config: RemoteHostConfig, context: HostContext, deps: RemoteHostDeps) {
    super(config, context);
    // Helper commands (transfers, share keys) follow the test, not the host's outages: a
    // share must still remove its keys while the host is being shut down for a soft reboot.
    const lab = context;
    // From here on the host's own context: its steps check the host's leases first, and its
    // calls end when the host goes away (a reboot, a power off).
    context = this.context;
    // Every connection of the host goes through the lifecycle's gate: none opens while its power is cut.
    const path = this.lifecycle.gate(deps.path);
    this.path = path;
    this.consolePath = deps.path;
    this.connections = new ConnectionManager(config, {
      path,
      factory: deps.factory,
      onEvent: ({ event, detail }) =>
        context.events.emit({ type: 'connection', time: Date.now(), host: config.name, protocol: 'ssh', event, ...(detail ? { detail } : {}) }),
    });
    this.executor = new SshExecutor(config, this.connections);
    this.backend = this.execBackend(path);
    const runner = commandRunner(this.backend, () => lab.signal());
    this.transfers = new RemoteTransfers({ config, context, connections: this.connections, path, runner });
    this.forwards = new RemoteForwards({ host: config.name, context, connections: this.connections, runner, commandTimeout: () => this.commandTimeout });
    this.powerControl = new HostPower({
      config,
      context: this.context,
      testSignal: () => lab.signal(),
      lifecycle: this.lifecycle,
      pdu: deps.pdu,
      upChecks: () => this.upChecks(),
      release: (reason, step) => this.release(reason, step),
      rebootShell: (onLifecycle) =>
        this.config.term === 'console'
          ? { shell: this.console.shellSessionInstance, drops: false }
          : { shell: this.createShell('reboot', undefined, undefined, onLifecycle), drops: true },
      bootWatch: {
        start: async () => {
          this.bootWatch?.stop();
          this.bootWatch = undefined;
          if (!this.config.console) return;
          this.bootWatch = this.console.watch(this.config.console.loginPrompt);
          // Connected before the power goes, so that the console log has the whole boot.
          await this.console.connection.ensure().catch(() => {});
        },
        stop: () => {
          this.bootWatch?.stop();
          this.bootWatch = undefined;
        },
      },
      health: (signal) => this.health(signal),
      self: () => this,
    });
  }

  /** `up`, or why calls fail at once now: `rebooting`, `off`, `down` (did not come back). */
  get state(): HostState {
    return this.lifecycle.state;
  }

  /**
   * Switches the host's outlet through its power driver (`on`, `off`, `cycle`) or reads it
   * (`state`: `on`, `off` or `unknown`). Actions to one PDU run one at a time, bounded by the
   * PDU's timeout. `off` and `cycle` are outages like a hard reboot: everything the host
   * holds is closed, and calls fail at once with a clear error until `power('on')` (for
   * `off`) and `waitUntilUp()`. Resolves with the state it leaves.
   */
  power(action: PowerAction, options: PowerOptions = {}): Promise<PowerState> {
    return this.powerControl.power(action, options);
  }

  /**
   * Reboots the device: soft (default) types `lifecycle.rebootCommand` into a new shell and
   * takes the shell dropping as the device going down; `hard: true` power-cycles it through
   * its power driver. Then (unless `wait: false`) waits until it is back: SSH accepting a
   * login and the shell answering, with progress in the transcript. Meanwhile calls fail at
   * once with "dut1 is rebooting"; calls in flight end with that reason. Afterwards the
   * SSH connection is new, sessions (default and named) open new shells on their next
   * command (their state, such as `cd`, is gone), and forwards and shares are stopped:
   * open them again. Resolves with how long each phase took.
   */
  reboot(options: RebootOptions = {}): Promise<RebootResult> {
    return this.powerControl.reboot(options);
  }

  /**
   * Waits until the host answers: SSH accepts a login and the shell answers (telnet hosts:
   * a login and the shell), tried every `lifecycle.pollInterval` within `timeout` (default
   * `lifecycle.upTimeout`), with progress in the transcript. Ends a reboot or a power on;
   * throws a HostUnavailableError naming the last failure when the bound runs out.
   */
  waitUntilUp(options: WaitUntilUpOptions = {}): Promise<UpTimings> {
    return this.powerControl.waitUntilUp(options);
  }

  /**
   * Recovery after a failed test (the fixtures call it): when `lifecycle.recover` is set and
   * the host fails its health check, recovers it and checks again. Throws a
   * HostUnavailableError when it cannot be recovered.
   */
  recover(after: string, options: { signal?: AbortSignal } = {}): Promise<RecoveryReport> {
    return this.powerControl.recover(after, options.signal);
  }

  /**
   * Marks the host down: calls fail at once with `why` until `waitUntilUp()` or a reboot
   * brings it back (the fixtures use it for hosts that could not be recovered).
   */
  markDown(why: string): void {
    this.lifecycle.enter('down', why);
  }

  /**
   * What must pass for the host to be up, in order: after a reboot or power cycle, the
   * console's login prompt (hosts with a console); SSH accepting a login (SSH hosts); the
   * default shell answering (a telnet login; the console's shell mode on console hosts).
   */
  protected upChecks(): UpCheck[] {
    const { term } = this.config;
    const checks: UpCheck[] = [];
    const watch = this.bootWatch;
    if (watch) {
      // Bounded per round, so that progress shows while the board boots.
      checks.push({ name: 'console', run: (timeout, signal) => watch.wait(Math.min(timeout, CONSOLE_ROUND_MS), signal) });
    }
    if (term === 'ssh') checks.push(this.sshCheck());
    checks.push({ name: term === 'telnet' ? 'telnet' : 'shell', run: (_timeout, signal) => this.sessions.openDefault(signal) });
    return checks;
  }

  /** SSH accepting a login, probed with short attempts (see below). */
  private sshCheck(): UpCheck {
    // While a board boots its network may swallow a connect until it gives up: each attempt
    // is bounded by a few times what a login took before (at least 2 s), or, with nothing
    // known, starts at 2 s and doubles while unanswered; never above ssh.connectTimeout.
    let unanswered = 0;
    const ssh: UpCheck = {
      name: 'ssh',
      run: async (timeout, signal) => {
        const known = this.connections.lastConnectMs;
        const probe = known === undefined ? FIRST_PROBE_MS * 2 ** Math.min(unanswered, 10) : Math.max(FIRST_PROBE_MS, 3 * known);
        try {
          await this.connections.tryConnect(Math.min(timeout, probe), signal);
          unanswered = 0;
        } catch (error) {
          if (error instanceof ConnectionError && error.kind === 'timeout') unanswered++;
          throw error;
        }
      },
    };
    return ssh;
  }

  /**
   * Runs the health check command on its own channel (no events), and on a host with a
   * console also in the console's shell (a console left busy is unhealthy too); resolves with
   * why it failed.
   */
  private async health(signal: AbortSignal | undefined): Promise<string | undefined> {
    const { healthCheck, healthTimeout } = this.config.lifecycle;
    // The bound holds whatever the device does (a frozen one never answers a channel open).
    const bound = AbortSignal.timeout(healthTimeout);
    const both = anySignal(signal, bound);
    const what = JSON.stringify(healthCheck);
    const silent = `no answer within ${formatDuration(healthTimeout)}`;
    const started = Date.now();
    const left = () => Math.max(1, healthTimeout - (Date.now() - started));
    const onConsole = async () => {
      const outcome = await this.console.shellSessionInstance.run(healthCheck, { timeout: left(), signal: both });
      if (outcome.exitCode === 0) return undefined;
      return `${what} on the console: ${bound.aborted || outcome.timedOut ? silent : (outcome.error ?? `exit status ${outcome.exitCode}`)}`;
    };
    try {
      // A console host's shell is its console; a host with SSH or telnet and a console is
      // checked on both (a console left busy is unhealthy too).
      if (this.config.term === 'console') return await onConsole();
      const outcome = await this.backend.run(healthCheck, { timeout: healthTimeout, signal: both });
      if (bound.aborted || outcome.timedOut) return `${what}: ${silent}`;
      if (outcome.exitCode !== 0)
        return `${what}: ${execResult(this.name, this.backend.protocol, healthCheck, healthTimeout, outcome, signal).error ?? `exit status ${outcome.exitCode}`}`;
      return this.config.console ? await onConsole() : undefined;
    } catch (error) {
      return `${what}: ${bound.aborted ? silent : messageOf(error)}`;
    }
  }

  /**
   * Closes, for an outage, one group of what the host holds (see ReleaseStep): the SSH
   * connection; forwards and shares (a share removes its keys on the device); the sessions'
   * shells (the sessions stay and open a new shell on their next command; a console's
   * shell logs in again) and the transfer and exec pools. The console itself stays
   * connected: its log covers the reboot.
   */
  private async release(reason: Error, step: ReleaseStep): Promise<string[]> {
    const closed: string[] = [];
    if (step !== 'device' && this.connections.connected) {
      closed.push('the SSH connection');
      await this.connections.close(reason);
    }
    if (step === 'connection') return closed;
    const { forwards, shares } = this.forwards.open;
    await this.forwards.close();
    if (forwards > 0 || shares > 0) closed.push(`${forwards} forward(s) and ${shares} share(s) (open them again afterwards)`);
    if (step === 'device') return closed;
    const sessions = await this.sessions.sessionNames();
    await this.sessions.closeShells();
    await this.consoleInstance?.closeShell().catch(() => {});
    await this.transfers.close();
    await this.backend.close();
    if (sessions.length > 0)
      closed.push(`the shells of ${sessions.map((name) => `"${name}"`).join(', ')} (each session opens a new shell on its next command)`);
    return closed;
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
              context.events.emit({
                type: 'session',
                time: Date.now(),
                host: config.name,
                session: name,
                protocol: 'telnet',
                event,
                ...(detail ? { detail } : {}),
              }),
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
      path: this.consolePath,
      createShell: (name, transport, exclusive) => super.createShell(name, transport, exclusive),
      sshReady: this.config.term === 'telnet' ? undefined : (timeout) => waitForSsh(this.name, this.executor, timeout),
    });
    return this.consoleInstance;
  }

  /** On term: 'console' hosts the default shell is the console's shell mode (one per console). */
  protected override createShell(
    name: string,
    transport?: ShellTransport,
    exclusive?: ShellSessionOptions['exclusive'],
    onLifecycle?: SessionObserver['lifecycle'],
  ): ShellSession {
    if (this.config.term !== 'console' || transport) return super.createShell(name, transport, exclusive, onLifecycle);
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
    return execResult(this.name, this.backend.protocol, command, request.timeout, await this.backend.run(command, request), request.signal);
  }

  async put(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<TransferResult> {
    this.context.fence?.();
    return this.transfers.move('put', localPath, remotePath, options);
  }

  async get(remotePath: string, localPath: string, options: TransferOptions = {}): Promise<TransferResult> {
    this.context.fence?.();
    return this.transfers.move('get', remotePath, localPath, options);
  }

  /**
   * Local port forward: connections to 127.0.0.1:<forward.port> on the runner reach
   * `address:port` as seen from this host. Closed with the host.
   */
  async forwardLocal(address: string, port: number, options: LocalForwardOptions = {}): Promise<Forward> {
    this.context.fence?.();
    return this.forwards.local(address, port, options);
  }

  /**
   * Remote port forward: the device listens on `bindAddress:<forward.port>` (loopback by
   * default) and connections reach `localAddress:localPort` as seen from the runner.
   */
  async forwardRemote(localAddress: string, localPort: number, options: RemoteForwardOptions = {}): Promise<Forward> {
    this.context.fence?.();
    return this.forwards.remote(localAddress, localPort, options);
  }

  /** Remote port forward whose connections are handled in-process (the reverse SFTP share uses it). */
  async forwardRemoteTo(handler: IncomingHandler, options: RemoteForwardOptions = {}): Promise<Forward> {
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
  async share(localDir: string, options: ShareOptions = {}): Promise<Share> {
    this.context.fence?.();
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
