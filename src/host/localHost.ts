/** The runner itself as a host: a persistent local bash, local processes for exec, copies for transfers. */
import { spawn } from 'node:child_process';
import type { LocalHostConfig } from '../config/defineLab.js';
import { LineSplitter, cleanText } from '../session/text.js';
import { LocalShellTransport } from '../session/localShell.js';
import type { ShellTransport } from '../session/transport.js';
import { LocalCopy } from '../transfer/copy.js';
import type { TransferOptions, TransferResult } from '../transfer/types.js';
import { TransferError } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import { reportCommand } from './commands.js';
import type { HostContext } from './events.js';
import { Host, type ExecOptions } from './host.js';
import { CommandResult, statusOf } from './results.js';
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

  exec(command: string, options: ExecOptions = {}): Promise<CommandResult> {
    const timeout = options.timeout ?? this.commandTimeout;
    const where = { host: this.name, session: 'exec', protocol: 'local' as const };
    return reportCommand(this.context, where, command, (onLine) => runLocalProcess(command, timeout, options, onLine, where));
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
        throw new TransferError(`${direction} with method "${options.method}": the local host copies files on the runner; transfer methods are for remote hosts.`, {
          host: this.name,
          protocol: 'local',
          hint: 'Leave `method` out for the local host.',
          kind: 'unsupported',
        });
      }
      return direction === 'put' ? this.copier.put(source, destination, options) : this.copier.get(source, destination, options);
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

