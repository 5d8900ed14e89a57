/** A running lab: hosts by name, created on first use, sharing events and step reporting. */
import { LOCAL_HOST, type LabConfig } from '../config/defineLab.js';
import { loadLab, resolveLabFile } from '../config/load.js';
import { suggest } from '../config/problems.js';
import { LabwrightError } from '../util/errors.js';
import { LabEvents, plainStep, type HostContext, type StepRunner } from './events.js';
import { DEFAULT_COMMAND_TIMEOUT, type Host } from './host.js';
import { LocalHost } from './localHost.js';

/** Creates the object for a remote host; the seam through which remote transports plug in. */
export type RemoteHostFactory = (lab: Lab, name: string) => Host;

/** Options of a {@link Lab}. */
export interface LabOptions {
  /** Command timeout (ms) for hosts that set none; between the host's own value and the lab's `defaults.commandTimeout`. */
  commandTimeout?: number | undefined;
  /** Builds remote hosts (RemoteHost by default; tests pass doubles here). */
  remoteHostFactory?: RemoteHostFactory | undefined;
}

let defaultRemoteFactory: RemoteHostFactory | undefined;

/** Registers how remote hosts are built when a lab is given no factory (set by the remote host module). */
export function setDefaultRemoteHostFactory(factory: RemoteHostFactory): void {
  defaultRemoteFactory = factory;
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
      const factory = this.options.remoteHostFactory ?? defaultRemoteFactory;
      if (!factory) {
        throw new LabwrightError(`no remote host support is loaded.`, { host: name, hint: 'Import labwright (or labwright/core) rather than internal modules.' });
      }
      host = factory(this, name);
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

  /** Hosts created so far. */
  get activeHosts(): Host[] {
    return [...this.hosts.values()];
  }

  /** Closes every host's sessions and connections. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.hosts.values()].map((host) => host.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
