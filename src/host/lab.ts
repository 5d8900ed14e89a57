/** A running lab: hosts by name, created on first use, sharing events and step reporting. */
import { type LabConfig, LOCAL_HOST } from '../config/defineLab.js';
import { hopChain } from '../config/hops.js';
import { loadLab, resolveLabFile } from '../config/load.js';
import { suggest } from '../config/problems.js';
import type { LeaseSelector } from '../lease/selector.js';
import type { ConnectionFactory } from '../transport/connectionManager.js';
import { HopPath } from '../transport/hopPath.js';
import { directPath, type NetworkPath } from '../transport/network.js';
import { LabwrightError } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import { type HostContext, LabEvents, plainStep, type TestBinding } from './events.js';
import { DEFAULT_COMMAND_TIMEOUT, type Host } from './host.js';
import { type HostLease, LabLeases, type LeaseOptions } from './leases.js';
import { LocalHost } from './localHost.js';
import { powerCommandRunner, PowerControllers } from './pdus.js';
import { RemoteHost } from './remoteHost.js';

/** Options of a {@link Lab}. */
export interface LabOptions {
  /** Command timeout (ms) for hosts that set none; between the host's own value and the lab's `defaults.commandTimeout`. */
  commandTimeout?: number | undefined;
  /** Creates raw connections for every remote host: the seam for test doubles. */
  connectionFactory?: ConnectionFactory | undefined;
}

/**
 * The hosts of a lab. `host(name)` returns the same object for a name every time; it
 * connects lazily, on first command.
 *
 * ```ts
 * const lab = await Lab.load('lab.config.ts');
 * const dut = lab.host('dut1');
 * console.log((await dut.run('uname -a')).last.output);
 * await lab.close();
 * ```
 */
export class Lab implements AsyncDisposable {
  readonly config: LabConfig;
  /** Every command, send, expect, session and transfer of every host. */
  readonly events = new LabEvents();
  private readonly hosts = new Map<string, Host>();
  private readonly options: LabOptions;
  private binding: TestBinding | undefined;
  /** Tests (by signal) already told that a timeout outlasts them. */
  private readonly warnedAboutTime = new WeakSet<AbortSignal>();
  /** What every host shares; exposed for host implementations. */
  readonly context: HostContext;
  /** The power controllers, shared by the hosts on each PDU. */
  private readonly power = new PowerControllers((runOn) => powerCommandRunner(runOn, (name) => this.host(name)));

  constructor(config: LabConfig, options: LabOptions = {}) {
    this.config = config;
    this.options = options;
    this.context = {
      events: this.events,
      step: (title, body) => (this.binding?.step ?? plainStep)(title, body),
      defaultCommandTimeout: () => this.options.commandTimeout ?? this.config.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT,
      signal: () => this.binding?.signal(),
      checkTimeout: (host, timeoutMs) => this.checkTimeout(host, timeoutMs),
    };
  }

  /** Loads a lab file (default: `$LABWRIGHT_LAB`, else `lab.config.ts`). */
  static async load(file?: string, options?: LabOptions): Promise<Lab> {
    return new Lab(await loadLab(resolveLabFile(file)), options);
  }

  /** Names of all hosts, `local` included. */
  get hostNames(): string[] {
    return [LOCAL_HOST, ...Object.keys(this.config.hosts)];
  }

  /**
   * Binds the lab to the test running now (the Playwright fixtures do, per test): commands
   * become its steps, stop when its signal fires, and a timeout longer than the test has
   * left is pointed out. `undefined` unbinds.
   */
  bindTest(binding: TestBinding | undefined): void {
    this.binding = binding;
  }

  private checkTimeout(host: string, timeoutMs: number): void {
    const test = this.binding?.signal();
    const deadline = this.binding?.deadline();
    if (!test || deadline === undefined || this.warnedAboutTime.has(test)) return;
    const left = deadline - Date.now();
    if (timeoutMs <= left) return;
    this.warnedAboutTime.add(test);
    this.events.emit({
      type: 'note',
      time: Date.now(),
      host,
      text: `a command timeout of ${formatDuration(timeoutMs)} is longer than the ${formatDuration(Math.max(0, left))} this test has left: the test's own timeout will end it first (raise the test timeout, or lower the command's)`,
    });
  }

  /** The host called `name`, created on first request. Throws for unknown names, suggesting the closest. */
  host(name: string): Host {
    const existing = this.hosts.get(name);
    if (existing) return existing;
    let host: Host;
    if (name === LOCAL_HOST) {
      host = new LocalHost(this.config.local, this.context);
    } else if (this.config.hosts[name]) {
      const config = this.config.hosts[name]!;
      host = new RemoteHost(config, this.context, {
        path: this.pathTo(name),
        factory: this.options.connectionFactory,
        pdu: this.power.forHost(config),
      });
    } else {
      const hint = suggest(name, this.hostNames);
      throw new LabwrightError(
        `no host named "${name}" in ${this.config.source ?? 'the lab'}${hint ? `; did you mean "${hint}"?` : ''} Known hosts: ${this.hostNames.join(', ')}.`,
        { hint: 'Add it to the lab config or fix the name.' },
      );
    }
    this.hosts.set(name, host);
    return host;
  }

  /** The remote host called `name` (throws if it is `local`). */
  remote(name: string): RemoteHost {
    const host = this.host(name);
    if (!(host instanceof RemoteHost)) throw new LabwrightError(`"${name}" is the runner, not a remote host.`, { host: name });
    return host;
  }

  private readonly paths = new Map<string, HopPath>();

  // --- leases (src/lease/, src/host/leases.ts) ---
  private labLeases: LabLeases | undefined;

  /** Device leases of this lab: the store of `leases.store` or `$LABWRIGHT_LEASES` (embedded by default), opened on first use. */
  get leases(): LabLeases {
    return (this.labLeases ??= new LabLeases(this.config, (name) => this.host(name), this.context));
  }

  /**
   * Leases hosts, so that no other test, runner or machine sharing the store uses them
   * meanwhile: a host name, `{ tags: [...] }` (any free host with those tags), or a list of
   * selectors granted together. Waits in queue order while they are busy, up to `timeout`.
   *
   * ```ts
   * await using board = await lab.lease({ tags: ['arm64'] });
   * await board.host.run('flash_erase /dev/mtd0 0 0');
   * ```
   */
  lease(selectors: LeaseSelector | readonly LeaseSelector[], options?: LeaseOptions): Promise<HostLease> {
    return this.leases.lease(selectors, options);
  }
  // --- end leases ---

  /** The network path of `name` once its host was created (a HopPath for hosts behind a hop), for diagnostics. */
  pathOf(name: string): NetworkPath | undefined {
    return this.paths.get(name) ?? (this.hosts.has(name) ? directPath : undefined);
  }

  /**
   * How `name` is reached: directly, or through its hop's SSH connection (recursively).
   * The path object exists from the start and connects on first use, so it can describe
   * itself (`via bastion`) before anything connected.
   */
  private pathTo(name: string): NetworkPath {
    const hop = this.config.hosts[name]?.hop;
    if (hop === undefined) return directPath;
    let path = this.paths.get(name);
    if (!path) {
      path = new HopPath(hop, this.remote(hop).connections, hopChain(this.config.hosts, name));
      this.paths.set(name, path);
    }
    return path;
  }

  /** Hosts created so far. */
  get activeHosts(): Host[] {
    return [...this.hosts.values()];
  }

  /** Closes every host's sessions and connections; hosts behind hops first, bastions last. */
  async close(): Promise<void> {
    const depth = (host: Host) => (host instanceof RemoteHost ? hopChain(this.config.hosts, host.name).length : 0);
    const byDepth = [...this.hosts.values()].sort((a, b) => depth(b) - depth(a));
    for (const level of [...new Set(byDepth.map(depth))]) {
      await Promise.allSettled(byDepth.filter((host) => depth(host) === level).map((host) => host.close()));
    }
    await Promise.allSettled([...this.paths.values()].map((path) => path.close()));
    this.paths.clear();
    // Devices are handed on only after this lab stopped using them.
    await this.labLeases?.close();
    this.labLeases = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
