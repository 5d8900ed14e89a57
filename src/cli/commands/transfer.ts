/**
 * `labwright put HOST SRC DST` and `labwright get HOST SRC DST`: files and directories by
 * the host's transfer method (or `--method`), verified, with progress: a bar (bytes, rate,
 * ETA) on a terminal, plain lines otherwise.
 */
import path from 'node:path';

import { type Command, Option } from 'commander';

import { UsageError } from '../context.js';
import { formatBytes, formatRate } from '../format.js';
import type { ActionRunner, CliCommand } from '../program.js';
import { type ProgressMode, ProgressReporter } from '../progress.js';

interface TransferCliOptions {
  method?: 'sftp' | 'scp' | 'ftp' | 'nc';
  verify?: 'size' | 'sha256' | 'none';
  progress?: ProgressMode;
}

function register(direction: 'put' | 'get', program: Command, runAction: ActionRunner): void {
  const [from, to] = direction === 'put' ? ['local', 'remote'] : ['remote', 'local'];
  program
    .command(direction)
    .description(direction === 'put' ? 'copy a local file or directory to a host' : 'copy a file or directory from a host')
    .argument('<host>', 'lab host')
    .argument('<source>', `${from} path`)
    .argument('<destination>', `${to} path`)
    .addOption(new Option('-m, --method <method>', "transfer method (default: the host's)").choices(['sftp', 'scp', 'ftp', 'nc']))
    .addOption(new Option('--verify <mode>', "verification (default: the method's, size)").choices(['size', 'sha256', 'none']))
    .addOption(new Option('--progress <mode>', 'bar (default on a terminal), plain (default otherwise) or none').choices(['bar', 'plain', 'none']))
    .action((hostName: string, source: string, destination: string, options: TransferCliOptions) =>
      runAction(async (context) => {
        const host = await context.host(hostName);
        const { stderr, stdout } = context.io;
        const mode: ProgressMode = options.progress ?? (stderr.isTTY ? 'bar' : 'plain');
        const label = `${direction} ${path.basename(source) || source}`;
        const progress = new ProgressReporter(label, { mode, out: stderr });
        const transferOptions = {
          ...(options.method ? { method: options.method } : {}),
          ...(options.verify ? { verify: options.verify } : {}),
          onProgress: (done: number, total: number) => progress.update(done, total),
        };
        if (source === '' || destination === '') throw new UsageError('source and destination must not be empty');
        const result = direction === 'put' ? await host.put(source, destination, transferOptions) : await host.get(source, destination, transferOptions);
        progress.finish();
        const seconds = Math.max(result.durationMs, 1) / 1000;
        stdout.write(
          `${host.name}: ${direction} ${source} → ${destination}: ${result.files} file(s), ${formatBytes(result.bytes)} in ${seconds.toFixed(1)} s (${formatRate(result.bytes / seconds)}) by ${result.method}, verified ${result.verified}\n`,
        );
        return 0;
      }),
    );
}

export const put: CliCommand = { register: (program, runAction) => register('put', program, runAction) };
export const get: CliCommand = { register: (program, runAction) => register('get', program, runAction) };
