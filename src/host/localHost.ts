/** The runner itself as a host: a persistent local bash, local processes for exec, copies for transfers. */
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { LocalHostConfig } from '../config/defineLab.js';
import { LocalShellTransport } from '../session/localShell.js';
import type { ShellTransport } from '../session/transport.js';
import type { TransferOptions, TransferResult } from '../transfer/types.js';
import { TransferError, messageOf } from '../util/errors.js';
import type { HostContext } from './events.js';
import { Host, type ExecRequest } from './host.js';
import { runLocalProcess } from './localExec.js';
import type { CommandResult } from './results.js';
import { listFiles, treeSize } from '../transfer/localTree.js';
import { checkDigest, sha256File } from '../transfer/verify.js';

/** The `local` host: commands run on the test runner. */
export class LocalHost extends Host {
  readonly kind = 'local' as const;
  declare readonly config: LocalHostConfig;

  constructor(config: LocalHostConfig, context: HostContext) {
    super(config, context);
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

  async put(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.copy('put', localPath, remotePath, options);
  }

  async get(remotePath: string, localPath: string, options: TransferOptions = {}): Promise<TransferResult> {
    return this.copy('get', remotePath, localPath, options);
  }

  private async copy(direction: 'put' | 'get', source: string, destination: string, options: TransferOptions): Promise<TransferResult> {
    const started = Date.now();
    const [local, remote] = direction === 'put' ? [source, destination] : [destination, source];
    const report = (bytes: number | undefined, error?: string) =>
      this.context.events.emit({
        type: 'transfer',
        time: Date.now(),
        host: this.name,
        direction,
        method: 'copy',
        local,
        remote,
        ...(bytes === undefined ? {} : { bytes }),
        durationMs: Date.now() - started,
        ...(error ? { error } : {}),
      });
    return this.context.step(`${this.name}: ${direction} ${source} → ${destination}`, async () => {
      try {
        const before = await treeSize(source);
        await mkdir(path.dirname(path.resolve(destination)), { recursive: true });
        await cp(source, destination, { recursive: true, force: true, preserveTimestamps: true });
        const verify = options.verify ?? 'size';
        if (verify !== 'none') {
          const after = await treeSize(destination);
          if (after.bytes !== before.bytes || after.files !== before.files) {
            throw new TransferError(
              `copy of ${source} to ${destination} is incomplete: ${after.files} file(s) / ${after.bytes} bytes arrived of ${before.files} / ${before.bytes}.`,
              { host: this.name, protocol: 'local', hint: 'Check free space and permissions at the destination.' },
            );
          }
          if (verify === 'sha256') {
            for (const file of await listFiles(source)) {
              const [from, to] = [path.join(source, file), path.join(destination, file)];
              checkDigest(await sha256File(from), await sha256File(to), `copy of ${from}`, { host: this.name, protocol: 'local' });
            }
          }
        }
        options.onProgress?.(before.bytes, before.bytes);
        report(before.bytes);
        return {
          direction,
          method: 'copy',
          local,
          remote,
          files: before.files,
          bytes: before.bytes,
          durationMs: Date.now() - started,
          verified: verify,
        };
      } catch (error) {
        report(undefined, messageOf(error));
        if (error instanceof TransferError) throw error;
        throw new TransferError(`could not copy ${source} to ${destination}: ${messageOf(error)}.`, {
          host: this.name,
          protocol: 'local',
          hint: 'Check that the source exists and the destination is writable.',
          cause: error,
        });
      }
    });
  }
}

