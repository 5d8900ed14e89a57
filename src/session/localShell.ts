/**
 * The local shell: an interactive bash (`-i`, no rc files) on pipes, in its own process
 * group. Interactive mode gives terminal semantics without a pty: SIGINT to the group
 * aborts the whole command line, loops included, and the shell survives with its state.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

import { SessionClosedError } from '../util/errors.js';
import { descendants, signalAll } from './processTree.js';
import type { ShellChannel, ShellSink, ShellTransport } from './transport.js';

/** Options of the local shell. */
export interface LocalShellOptions {
  /** Shell command line; default `bash --noprofile --norc -i`. Run through `/bin/sh -c`. */
  command?: string | undefined;
  /** Working directory; defaults to the runner's. */
  cwd?: string | undefined;
  /** Extra environment variables. */
  env?: Record<string, string> | undefined;
}

const DEFAULT_COMMAND = 'bash --noprofile --norc -i';

export class LocalShellTransport implements ShellTransport {
  readonly protocol = 'local' as const;
  readonly host: string;
  readonly pty = false;
  readonly newline = '\n';

  constructor(
    host: string,
    private readonly options: LocalShellOptions = {},
  ) {
    this.host = host;
  }

  async open(sink: ShellSink): Promise<ShellChannel> {
    const command = this.options.command ?? DEFAULT_COMMAND;
    const child = spawn('/bin/sh', ['-c', `exec ${command}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so an interrupt reaches the shell and its jobs only
      cwd: this.options.cwd,
      env: { ...process.env, TERM: 'dumb', ...this.options.env },
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) =>
        reject(
          new SessionClosedError(`could not start ${JSON.stringify(command)}: ${error.message}`, {
            host: this.host,
            protocol: 'local',
            hint: 'Check shell.command of the local host.',
          }),
        ),
      );
    });
    child.stdout.on('data', (chunk: Buffer) => sink.data(chunk));
    // Until `exec 2>&1` runs, bash's own messages arrive here; afterwards stderr is merged
    // into stdout at the source so that their order is kept.
    child.stderr.on('data', (chunk: Buffer) => sink.data(chunk));
    child.stdin.on('error', () => {
      // EPIPE after the shell died; the exit event reports it.
    });
    child.once('exit', (code, signal) => {
      sink.closed(new Error(signal ? `the local shell was killed by ${signal}` : `the local shell exited with code ${code}`));
    });
    child.stdin.write('exec 2>&1\n');
    return new LocalShellChannel(child);
  }
}

class LocalShellChannel implements ShellChannel {
  private exited = false;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.once('exit', () => (this.exited = true));
  }

  write(data: string | Buffer): void {
    if (this.exited || this.child.stdin.destroyed) throw new Error('the local shell has exited');
    this.child.stdin.write(data);
  }

  async interrupt(attempt: number): Promise<boolean> {
    const pid = this.child.pid;
    if (pid === undefined || this.exited) return false;
    if (attempt < 2) {
      // Like Ctrl+C on a terminal: the whole process group, the shell included.
      signalAll([-pid], 'SIGINT');
      return true;
    }
    // Programs that ignore SIGINT: end them, leave the shell.
    signalAll(await descendants(pid), attempt === 2 ? 'SIGTERM' : 'SIGKILL');
    return attempt < 3;
  }

  async close(): Promise<void> {
    const pid = this.child.pid;
    if (this.exited || pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    signalAll([-pid], 'SIGHUP');
    const timer = setTimeout(() => signalAll([-pid], 'SIGKILL'), 1_000);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3_000))]);
    clearTimeout(timer);
  }
}
