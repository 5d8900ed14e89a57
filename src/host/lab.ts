/** A running lab: hosts by name, created on first use, sharing events and step reporting. */
import { LOCAL_HOST, type LabConfig } from '../config/defineLab.js';
import { hopChain } from '../config/hops.js';
import { loadLab, resolveLabFile } from '../config/load.js';
import { suggest } from '../config/problems.js';
import type { ConnectionFactory } from '../transport/connectionManager.js';
import { HopPath } from '../transport/hopPath.js';
import { directPath, type NetworkPath } from '../transport/network.js';
import { LabwrightError } from '../util/errors.js';
import { LabEvents, plainStep, type HostContext, type StepRunner } from './events.js';
import { DEFAULT_COMMAND_TIMEOUT, type Host } from './host.js';
import { LabLeases, type HostLease, type LeaseOptions } from './leases.js';
import type { LeaseSelector } from '../lease/selector.js';
import { LocalHost } from './localHost.js';
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
  private stepRunner: StepRunner = plainStep;
  /** What every host shares; exposed for host implementations. */
  readonly context: HostContext;

  constructor(config: LabConfig, options: LabOptions = {}) {
    this.config = config;
    this.options = options;
    this.context = {
      events: this.events,
      step: (title, body) => this.stepRunner(title, body),
      defaultCommandTimeout: () => this.options.commandTimeout ?? this.config.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT,
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

  /** Replaces how commands are wrapped into steps (the Playwright fixtures use test.step). */
  setStepRunner(runner: StepRunner | undefined): void {
    this.stepRunner = runner ?? plainStep;
  }

  /** The host called `name`, created on first request. Throws for unknown names, suggesting the closest. */
  host(name: string): Host {
    const existing = this.hosts.get(name);
    if (existing) return existing;
    let host: Host;
    if (name === LOCAL_HOST) {
      host = new LocalHost(this.config.local, this.context);
    } else if (this.config.hosts[name]) {
      host = new RemoteHost(this.config.hosts[name]!, this.context, {
        path: () => this.pathTo(name),
        factory: this.options.connectionFactory,
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

  private readonly paths = new Map<string, NetworkPath>();

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

  /** The network path of `name` once it was used (a HopPath for hosts behind a hop), for diagnostics. */
  pathOf(name: string): NetworkPath | undefined {
    return this.paths.get(name);
  }

  /** How `name` is reached: directly, or through its hop's SSH connection (recursively). */
  private async pathTo(name: string): Promise<NetworkPath> {
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
    await Promise.allSettled([...this.paths.values()].map((path) => (path as HopPath).close?.()));
    this.paths.clear();
    // Devices are handed on only after this lab stopped using them.
    await this.labLeases?.close();
    this.labLeases = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
