/**
 * Transfers of the `local` host: copies on the runner, under the same rules as every
 * method (path rules, temporary names renamed once verified, progress, modes, idle timeout,
 * abort). The "remote" side of a put or get is also a runner path; `~` there is the
 * runner user's home.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

import { ByteCounter } from './byteCounter.js';
import { guarded } from './guard.js';
import { localPathOf, readLocalSource, sourceFiles, sourceTotals } from './localTree.js';
import { placeDestination, runnerPaths } from './paths.js';
import { commitRunnerFile, runnerPartials, runnerSide, stageRunnerFile } from './runnerSide.js';
import type { TransferOptions, TransferResult, TransferStrategy } from './types.js';
import { checkDigest, checkSize, sha256File } from './verify.js';

/** Idle bound of local copies without a `timeout` of their own. */
export const LOCAL_IDLE_TIMEOUT_MS = 60_000;

/** `~` and `~/x` as the runner user's home. */
function expandRunnerHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

export class LocalCopy implements TransferStrategy {
  readonly method = 'copy' as const;

  constructor(private readonly host: string) {}

  private get context() {
    return { host: this.host, protocol: 'local' as const };
  }

  put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
    return this.copy('put', localPath, remotePath, options);
  }

  get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult> {
    return this.copy('get', remotePath, localPath, options);
  }

  async close(): Promise<void> {}

  private copy(direction: 'put' | 'get', from: string, to: string, options: TransferOptions): Promise<TransferResult> {
    const [local, remote] = direction === 'put' ? [from, to] : [to, from];
    const spec = { ...this.context, direction, local, remote };
    const source = direction === 'put' ? from : expandRunnerHome(from);
    const destination = direction === 'put' ? expandRunnerHome(to) : to;
    return guarded(spec, LOCAL_IDLE_TIMEOUT_MS, options, async (guard) => {
      const started = Date.now();
      const tree = await readLocalSource(source);
      const totals = sourceTotals(tree);
      guard.setTotal(totals.bytes);
      const root = await placeDestination(
        runnerSide(this.context),
        destination,
        { directory: tree.kind === 'directory', name: runnerPaths.basename(source) },
        this.context,
      );
      if (tree.kind === 'directory') {
        for (const entry of tree.entries) if (entry.kind === 'directory') await mkdir(localPathOf(root, entry.relative), { recursive: true });
      }
      const partials = runnerPartials(guard);
      const verify = options.verify ?? 'size';
      for (const entry of sourceFiles(tree)) {
        const file = localPathOf(source, entry.relative);
        const final = localPathOf(root, entry.relative);
        const temp = stageRunnerFile(partials, final);
        await guard.step(
          pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), new ByteCounter((count) => guard.progress(count)), createWriteStream(temp), {
            signal: guard.signal,
          }),
        );
        if (verify !== 'none') checkSize(entry.size, (await stat(temp)).size, `copy of ${file}`, this.context);
        if (verify === 'sha256') {
          const [expected, actual] = await guard.step(Promise.all([sha256File(file), sha256File(temp)]), { quiet: true });
          checkDigest(expected, actual, `copy of ${file}`, this.context);
        }
        guard.check();
        await commitRunnerFile(partials, temp, final, options.mode ?? entry.mode);
      }
      return { direction, method: 'copy', local, remote, files: totals.files, bytes: totals.bytes, durationMs: Date.now() - started, verified: verify };
    });
  }
}
