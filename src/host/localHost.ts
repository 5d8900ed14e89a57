/** The runner itself as a host: a persistent local bash, local processes for exec, copies for transfers. */
import { spawn } from 'node:child_process';
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { LocalHostConfig } from '../config/defineLab.js';
import { LineSplitter, cleanText } from '../session/text.js';
import { LocalShellTransport } from '../session/localShell.js';
import type { ShellTransport } from '../session/transport.js';
import type { TransferOptions, TransferResult } from '../transfer/types.js';
import { TransferError, messageOf } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import { reportCommand } from './commands.js';
import type { HostContext } from './events.js';
import { Host, type ExecOptions } from './host.js';
import { CommandResult, statusOf } from './results.js';
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

  exec(command: string, options: ExecOptions = {}): Promise<CommandResult> {
    const timeout = options.timeout ?? this.commandTimeout;
    const where = { host: this.name, session: 'exec', protocol: 'local' as const };
    return reportCommand(this.context, where, command, (onLine) => runLocalProcess(command, timeout, options, onLine, where));
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

/** Runs `/bin/sh -c command` with separate stdout and stderr, bounded by `timeout`. */
function runLocalProcess(
  command: string,
  timeout: number,
  options: ExecOptions,
  onLine: (line: string) => void,
  where: { host: string; session: string; protocol: 'local' },
): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      detached: true,
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const lines = new LineSplitter((line) => onLine(cleanText(line)));
    let timedOut = false;
    let spawnError: Error | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      lines.push(chunk.toString('utf8'));
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => {});
    child.on('error', (error) => (spawnError = error));
    if (options.stdin !== undefined) child.stdin.end(options.stdin);
    else child.stdin.end();

    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 2_000).unref();
    }, timeout);

    child.on('close', (code, signal) => {
      clearTimeout(timer);
      lines.flush();
      const out = Buffer.concat(stdout);
      const exitCode = timedOut ? null : code;
      const error = spawnError
        ? `could not start: ${spawnError.message}`
        : timedOut
          ? `timed out after ${formatDuration(timeout)}; the command was terminated`
          : signal
            ? `killed by ${signal}`
            : undefined;
      resolve(
        new CommandResult({
          ...where,
          command,
          output: cleanText(out.toString('utf8')),
          outputBytes: out,
          exitCode,
          status: error ? 'error' : statusOf(exitCode),
          durationMs: Date.now() - started,
          timedOut,
          error,
          stderr: cleanText(Buffer.concat(stderr).toString('utf8')),
          signal: signal ? signal.replace(/^SIG/, '') : undefined,
        }),
      );
    });
  });
}

