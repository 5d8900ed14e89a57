/** The runner itself as a host: a persistent local bash, local processes for exec, copies for transfers. */
import type { LocalHostConfig } from '../config/defineLab.js';
import { LocalShellTransport } from '../session/localShell.js';
import type { ShellTransport } from '../session/transport.js';
import { LocalCopy } from '../transfer/copy.js';
import type { TransferOptions, TransferResult } from '../transfer/types.js';
import { TransferError } from '../util/errors.js';
import { anySignal } from '../util/time.js';
import type { HostContext } from './events.js';
import { type ExecRequest, Host } from './host.js';
import { runLocalProcess } from './localExec.js';
import type { CommandResult } from './results.js';
import { reportTransfer } from './transfers.js';

/** The `local` host: commands run on the test runner. */
export class LocalHost extends Host {
  readonly kind = 'local' as const;
  declare readonly config: LocalHostConfig;

  private readonly copier: LocalCopy;

  constructor(config: LocalHostConfig, context: HostContext) {
    super(config, context);
    this.copier = new LocalCopy(config.name);
  }

  protected shellTransport(): ShellTransport {
    return new LocalShellTransport(this.name, { command: this.config.shell.command });
  }

  protected override get execProtocol(): 'local' {
    return 'local';
  }

  protected execute(command: string, request: ExecRequest): Promise<CommandResult> {
    return runLocalProcess(this.name, command, request);
  }

  /** Copies on the runner under the transfer path rules; the "remote" side is a runner path too (`~` is the home). */
  put(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.transfer('put', localPath, remotePath, options);
  }

  /** Copies on the runner under the transfer path rules (see `put`). */
  get(remotePath: string, localPath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.transfer('get', remotePath, localPath, options);
  }

  private transfer(direction: 'put' | 'get', source: string, destination: string, options: TransferOptions): Promise<TransferResult> {
    const [local, remote] = direction === 'put' ? [source, destination] : [destination, source];
    return reportTransfer(this.context, { host: this.name, direction, method: 'copy', local, remote }, async () => {
      if (options.method !== undefined) {
        throw new TransferError(
          `${direction} with method "${options.method}": the local host copies files on the runner; transfer methods are for remote hosts.`,
          {
            host: this.name,
            protocol: 'local',
            hint: 'Leave `method` out for the local host.',
            kind: 'unsupported',
          },
        );
      }
      // The test's own signal stops a copy too.
      const withSignal = { ...options, signal: anySignal(options.signal, this.context.signal()) };
      return direction === 'put' ? this.copier.put(source, destination, withSignal) : this.copier.get(source, destination, withSignal);
    });
  }
}
