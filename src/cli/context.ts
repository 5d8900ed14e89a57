/**
 * What every command of the labwright CLI shares: the global options, the lab (loaded on
 * first need, from the lab file and/or an OpenSSH client config), the output streams, and
 * the closing of every connection when the command ends.
 */
import { existsSync } from 'node:fs';

import type { Host } from '../host/host.js';
import type { Lab } from '../host/lab.js';
import type { RemoteHost } from '../host/remoteHost.js';
import { LabwrightError } from '../util/errors.js';

/** Options every command accepts (before or after its name). */
export interface GlobalOptions {
  /** Lab file; default `$LABWRIGHT_LAB`, else `lab.config.ts`. */
  lab?: string;
  /** Also take hosts from an OpenSSH client config (`true`: `~/.ssh/config`). */
  sshConfig?: string | true;
}

/** The streams a command talks to; replaced in tests. */
export interface CliIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** A usage mistake (unknown host, bad argument): reported without a stack, exit code 2. */
export class UsageError extends LabwrightError {
  constructor(detail: string) {
    super(detail, { unprefixed: true });
  }
}

export class CliContext {
  private labs: Promise<Lab[]> | undefined;

  constructor(
    readonly options: GlobalOptions,
    readonly io: CliIo,
  ) {}

  /**
   * The labs to look hosts up in: the lab file (when it exists or no SSH config is given),
   * then the SSH config's hosts. Loaded once; core modules are imported only here, so
   * `--help` and usage errors stay instant.
   */
  labList(): Promise<Lab[]> {
    this.labs ??= (async () => {
      const [{ Lab }, { loadLab, resolveLabFile }, { defineLab }] = await Promise.all([
        import('../host/lab.js'),
        import('../config/load.js'),
        import('../config/defineLab.js'),
      ]);
      const file = resolveLabFile(this.options.lab);
      const labs: Lab[] = [];
      if (existsSync(file) || this.options.sshConfig === undefined) labs.push(new Lab(await loadLab(file)));
      if (this.options.sshConfig !== undefined) {
        const sshConfig = this.options.sshConfig;
        labs.push(new Lab(defineLab({ sshConfig }, `the SSH config ${sshConfig === true ? '~/.ssh/config' : sshConfig}`)));
      }
      return labs;
    })();
    return this.labs;
  }

  /** Every host name known, `local` first, without repeats. */
  async hostNames(): Promise<string[]> {
    return [...new Set((await this.labList()).flatMap((lab) => lab.hostNames))];
  }

  /** Remote host names (what `check` looks at by default). */
  async remoteHostNames(): Promise<string[]> {
    return (await this.hostNames()).filter((name) => name !== 'local');
  }

  /** The lab that defines `name`. */
  async labOf(name: string): Promise<Lab> {
    const labs = await this.labList();
    const lab = labs.find((candidate) => candidate.hostNames.includes(name));
    if (lab) return lab;
    const { suggest } = await import('../config/problems.js');
    const names = await this.hostNames();
    const hint = suggest(name, names);
    throw new UsageError(
      `no host named "${name}"${hint ? `; did you mean "${hint}"?` : ''} Known hosts: ${names.join(', ')}. Add it to ${labs[0]?.config.source ?? 'the lab file'} (or to your SSH config with --ssh-config).`,
    );
  }

  async host(name: string): Promise<Host> {
    return (await this.labOf(name)).host(name);
  }

  async remote(name: string): Promise<RemoteHost> {
    const host = await this.host(name);
    if (host.kind !== 'remote') throw new UsageError(`"${name}" is the runner itself, not a remote host.`);
    return host as RemoteHost;
  }

  /** Closes every connection opened by the command. */
  async close(): Promise<void> {
    if (!this.labs) return;
    const labs = await this.labs.catch(() => []);
    await Promise.allSettled(labs.map((lab) => lab.close()));
  }
}

/** The text a failed command prints: a labwright error's message (it names host, protocol and what to do), else the stack. */
export function describeFailure(error: unknown): string {
  if (error instanceof LabwrightError) return error.message;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
