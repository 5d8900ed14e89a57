/**
 * Netcat transfers, for devices with nothing better (telnet-only boards): a listener is
 * started on the device through the host's command runner (SSH exec or a telnet session),
 * on a free port found with ss, netstat or /proc/net/tcp; the runner connects to it through
 * the host's network path (so hops work); the listener's lifetime is bounded by a watchdog
 * and it is killed afterwards whatever happened. Directories travel as tar streams.
 * Sizes are verified; a failed attempt is retried once on a new port.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { NcOptions, VerifyMode } from '../config/schema.js';
import type { NetworkPath } from '../transport/network.js';
import { ConnectionError, TransferError, messageOf } from '../util/errors.js';
import { sleep } from '../util/time.js';
import { listFiles, treeSize } from './localTree.js';
import { checkDigest, checkSize, remoteShellPath, remoteTreeDigests, sha256File, shellQuote } from './verify.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';

export interface NcDeps {
  host: string;
  /** Address of the device as configured (the listener is reached at options.address or this). */
  address: string;
  options: NcOptions;
  runner: RemoteRunner;
  path: () => Promise<NetworkPath>;
}

/** Ports in LISTEN state from `ss -Htln`, `netstat -ltn` or /proc/net/tcp{,6} text. */
export function listeningPorts(text: string): Set<number> {
  const ports = new Set<number>();
  for (const line of text.split('\n')) {
    const proc = /^\s*\d+:\s+[0-9A-F]+:([0-9A-F]{4})\s+[0-9A-F]+:[0-9A-F]{4}\s+0A\b/i.exec(line);
    if (proc) {
      ports.add(Number.parseInt(proc[1]!, 16));
      continue;
    }
    const socket = /(?:^|\s)(?:\S*[:.])(\d+)\s+\S*[:.](?:\*|\d+)\s/.exec(line);
    if (socket && /LISTEN/i.test(line)) ports.add(Number(socket[1]));
  }
  return ports;
}

type Flavour = 'openbsd' | 'traditional';

export class NcTransfer implements TransferStrategy {
  readonly method = 'nc' as const;
  private flavour: Promise<Flavour> | undefined;

  constructor(private readonly deps: NcDeps) {}

  private get context() {
    return { host: this.deps.host, protocol: 'nc' as const };
  }

  private fail(detail: string, hint: string, cause?: unknown): TransferError {
    return new TransferError(detail, { ...this.context, hint, cause });
  }

  /** Checks that nc exists and which listen syntax it takes (OpenBSD: `-l PORT`; busybox/traditional: `-l -p PORT`). */
  private detect(): Promise<Flavour> {
    this.flavour ??= (async () => {
      const nc = this.deps.options.command;
      const result = await this.deps.runner.run(`command -v ${nc} >/dev/null 2>&1 || { echo LW_NO_NC; exit 0; }; ${nc} -h 2>&1 | head -5`, { timeout: 15_000 });
      if (result.stdout.includes('LW_NO_NC')) {
        throw this.fail(`"${nc}" is not installed on the device.`, 'Install netcat on the device, set nc.command to its path, or use another transfer method (sftp, scp, ftp).');
      }
      return /OpenBSD/i.test(result.stdout) ? 'openbsd' : 'traditional';
    })();
    this.flavour.catch(() => (this.flavour = undefined));
    return this.flavour;
  }

  /** A free port in the configured range, avoiding every port the device listens on. */
  private async freePort(avoid: Set<number>): Promise<number> {
    const listing = await this.deps.runner.run('ss -Htln 2>/dev/null || netstat -ltn 2>/dev/null || cat /proc/net/tcp /proc/net/tcp6 2>/dev/null', { timeout: 15_000 });
    const used = listingPortsOrEmpty(listing.stdout);
    const [low, high] = this.deps.options.portRange;
    const candidates: number[] = [];
    for (let port = low; port <= high; port++) if (!used.has(port) && !avoid.has(port)) candidates.push(port);
    if (candidates.length === 0) {
      throw this.fail(`no free port in nc.portRange ${low}-${high} on the device.`, 'Widen nc.portRange in the lab config.');
    }
    return candidates[Math.floor(Math.random() * candidates.length)]!;
  }

  /**
   * Starts `nc` listening on the device in the background with `redirect` (`> file` or
   * `< file`, or a pipeline around it), bounded by listenerLifetime. Returns its cleanup.
   */
  private async listen(port: number, wrap: (nc: string) => string, sending: boolean): Promise<{ pid: string; cleanup: () => Promise<void> }> {
    const flavour = await this.detect();
    const { command, listenerLifetime } = this.deps.options;
    // OpenBSD nc keeps the connection open after its input ends unless told (-N) to shut it down.
    const nc = flavour === 'openbsd' ? `${command} -l${sending ? ' -N' : ''} ${port}` : `${command} -l -p ${port}`;
    const lifetime = Math.max(1, Math.ceil(listenerLifetime / 1000));
    // Every descriptor of the background job is redirected: it must not hold the SSH
    // channel (or the telnet terminal) of the command that started it.
    const script = `( ${wrap(nc)} ) </dev/null >/dev/null 2>&1 & lw_nc=$!; (sleep ${lifetime}; kill $lw_nc) </dev/null >/dev/null 2>&1 & echo "LW_PIDS $lw_nc $!"`;
    const result = await this.deps.runner.run(`sh -c ${shellQuote(script)}`, { timeout: 15_000 });
    const pids = /LW_PIDS (\d+) (\d+)/.exec(result.stdout);
    if (!pids) throw this.fail(`could not start the nc listener: ${(result.stderr || result.stdout).trim() || `exit ${result.exitCode}`}.`, 'Check nc.command on the device.');
    return {
      pid: pids[1]!,
      // Whatever happened, nothing stays listening: kill the listener job, its children and the watchdog.
      cleanup: async () => {
        await this.deps.runner.run(killJobs(pids[1]!, pids[2]!), { timeout: 15_000 }).catch(() => {});
      },
    };
  }

  /** Connects to the listener, retrying while it is not up yet (bounded by readyTimeout). */
  private async connect(port: number): Promise<Duplex> {
    const networkPath = await this.deps.path();
    const address = this.deps.options.address ?? this.deps.address;
    const deadline = Date.now() + this.deps.options.readyTimeout;
    for (;;) {
      try {
        // Half-open: a BusyBox `nc -l` ends its sending side as soon as its stdin (/dev/null
        // for an upload) ends, and the upload must go on after that.
        return await networkPath.connect(address, port, Math.max(500, deadline - Date.now()), this.context, { halfOpen: true });
      } catch (error) {
        const retryable = error instanceof ConnectionError && (error.kind === 'refused' || error.kind === 'reset');
        if (!retryable || Date.now() > deadline) {
          throw this.fail(
            `the nc listener on ${address}:${port} did not accept within ${this.deps.options.readyTimeout} ms: ${messageOf(error)}`,
            'Check that the runner (or the hop) can reach the device on nc.portRange (firewall), or set nc.address.',
            error,
          );
        }
        await sleep(100);
      }
    }
  }

  /** Runs one attempt, retrying once on a new port when it fails. */
  private async twice<T>(attempt: (avoid: Set<number>) => Promise<T>): Promise<T> {
    const avoid = new Set<number>();
    try {
      return await attempt(avoid);
    } catch (error) {
      if (error instanceof TransferError && /not installed|no free port/.test(error.detail)) throw error;
      // Check the device again (nc may be gone, or the listener failed to start), then retry once.
      this.flavour = undefined;
      return attempt(avoid);
    }
  }

  async put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
    const started = Date.now();
    const info = await stat(localPath).catch((error: unknown) => {
      throw this.fail(`cannot read ${localPath}: ${messageOf(error)}.`, 'Check the local path.', error);
    });
    const directory = info.isDirectory();
    const size = await treeSize(localPath);
    const target = remoteShellPath(remotePath);
    await this.twice(async (avoid) => {
      const port = await this.freePort(avoid);
      avoid.add(port);
      const receive = directory ? (nc: string) => `mkdir -p ${target} && ${nc} | tar -x -C ${target}` : (nc: string) => `${nc} > ${target}`;
      const listener = await this.listen(port, receive, false);
      try {
        const socket = await this.connect(port);
        // The listener sends nothing; reading lets its end be seen, so the socket can close.
        socket.resume();
        let sent = 0;
        const source: Readable = directory ? tarCreate(localPath) : createReadStream(localPath);
        source.on('data', (chunk: Buffer) => {
          sent += chunk.length;
          options.onProgress?.(Math.min(sent, size.bytes), size.bytes);
        });
        try {
          await pipeline(source, socket);
        } finally {
          socket.destroy();
        }
        await this.waitForExit(listener.pid);
      } finally {
        await listener.cleanup();
      }
    });
    const verified = await this.verify('put', localPath, remotePath, directory, options.verify ?? this.deps.options.verify);
    return { direction: 'put', method: 'nc', local: localPath, remote: remotePath, files: size.files, bytes: size.bytes, durationMs: Date.now() - started, verified };
  }

  async get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult> {
    const started = Date.now();
    const source = remoteShellPath(remotePath);
    const probe = await this.deps.runner.run(`if [ -d ${source} ]; then echo dir; elif [ -r ${source} ]; then echo "file $(wc -c < ${source})"; else echo missing; fi`, { timeout: 15_000 });
    const kind = probe.stdout.trim();
    if (!/^(dir|file \d+)$/.test(kind)) {
      throw this.fail(`${remotePath} does not exist or cannot be read on the device.`, 'Check the remote path.');
    }
    const directory = kind === 'dir';
    const expected = directory ? undefined : Number(kind.split(' ')[1]);
    await this.twice(async (avoid) => {
      const port = await this.freePort(avoid);
      avoid.add(port);
      const send = directory ? (nc: string) => `tar -c -C ${source} . | ${nc}` : (nc: string) => `${nc} < ${source}`;
      // Everything local is prepared before connecting: once data flows, nothing may await in between.
      await mkdir(directory ? localPath : path.dirname(path.resolve(localPath)), { recursive: true });
      const listener = await this.listen(port, send, true);
      try {
        const socket = await this.connect(port);
        const extract = directory ? tarExtract(localPath) : undefined;
        const sink: Writable = extract?.stdin ?? createWriteStream(localPath);
        await receive(socket, sink, expected, (received) => options.onProgress?.(received, expected ?? received));
        // The runner's tar must have written every file before anything is verified.
        if (extract) await extract.done;
      } finally {
        await listener.cleanup();
      }
    });
    const size = await treeSize(localPath);
    const verified = await this.verify('get', localPath, remotePath, directory, options.verify ?? this.deps.options.verify);
    return { direction: 'get', method: 'nc', local: localPath, remote: remotePath, files: size.files, bytes: size.bytes, durationMs: Date.now() - started, verified };
  }

  /** After the last byte went out the receiving side writes and exits; wait (bounded) for that before verifying. */
  private async waitForExit(pid: string): Promise<void> {
    // A finished job may linger as a zombie (PID 1 of a container may not reap): Z counts as gone.
    const check = `if [ -r /proc/${pid}/stat ]; then s=$(sed 's/.*) //' /proc/${pid}/stat | cut -c1); [ "$s" = Z ] && echo gone || echo alive; else kill -0 ${pid} 2>/dev/null && echo alive || echo gone; fi`;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const alive = await this.deps.runner.run(check, { timeout: 15_000 });
      if (alive.stdout.includes('gone')) return;
      await sleep(100);
    }
  }

  async close(): Promise<void> {}

  private async verify(direction: 'put' | 'get', localPath: string, remotePath: string, directory: boolean, mode: VerifyMode): Promise<VerifyMode> {
    if (mode === 'none') return 'none';
    const remote = await remoteTreeDigests(this.deps.runner, remotePath, directory, mode, this.context);
    const files = directory ? await listFiles(localPath) : [''];
    if (remote.size !== files.length) {
      throw this.fail(`${direction} of ${direction === 'put' ? localPath : remotePath} is incomplete: ${remote.size} file(s) on the device, ${files.length} on the runner.`, 'Transfer again; check free space.');
    }
    for (const relative of files) {
      const local = relative ? path.join(localPath, relative) : localPath;
      const what = `${direction} of ${relative || (direction === 'put' ? localPath : remotePath)}`;
      const value = remote.get(relative);
      if (value === undefined) throw this.fail(`${what}: missing on the ${direction === 'put' ? 'device' : 'runner'}.`, 'Transfer again.');
      if (mode === 'size') checkSize(direction === 'put' ? (await stat(local)).size : Number(value), direction === 'put' ? Number(value) : (await stat(local)).size, what, this.context);
      else checkDigest(direction === 'put' ? await sha256File(local) : value, direction === 'put' ? value : await sha256File(local), what, this.context);
    }
    return mode;
  }
}

/**
 * Copies the socket into `sink` until it closes or, when the size is known, until that
 * many bytes arrived (some netcats keep the connection open after sending).
 */
function receive(socket: Duplex, sink: Writable, expected: number | undefined, progress: (received: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let done = false;
    const finish = (error?: unknown) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (error) return reject(error);
      sink.end(() => resolve());
    };
    sink.on('error', finish);
    socket.on('error', finish);
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('data', (chunk: Buffer) => {
      const take = expected === undefined ? chunk : chunk.subarray(0, Math.max(0, expected - received));
      received += take.length;
      if (take.length > 0 && !sink.write(take)) {
        socket.pause();
        sink.once('drain', () => socket.resume());
      }
      progress(received);
      if (expected !== undefined && received >= expected) finish();
    });
    if (expected === 0) finish();
  });
}

/**
 * A command that kills processes and their direct children. Children are found in
 * /proc/<pid>/stat (the parent pid follows the state, after the command name in
 * parentheses), not with `pkill -P`, which BusyBox lacks; they are listed before anything
 * is killed, as a dead parent's children are re-parented out of reach.
 */
export function killJobs(...pids: string[]): string {
  const parents = pids.map((pid) => `f[2] == ${pid}`).join(' || ');
  const children = `cat /proc/[0-9]*/stat 2>/dev/null | awk '{ i = index($0, ") "); split(substr($0, i + 2), f, " "); if (${parents}) print $1 }'`;
  return `kill $(${children}) ${pids.join(' ')} 2>/dev/null; true`;
}

function listingPortsOrEmpty(text: string): Set<number> {
  try {
    return listeningPorts(text);
  } catch {
    return new Set();
  }
}

/** A tar stream of a directory's contents, from the runner's tar. */
function tarCreate(dir: string): Readable {
  const child = spawn('tar', ['-c', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return child.stdout;
}

/** Extracts a tar stream into a directory with the runner's tar; `done` settles when tar exits. */
function tarExtract(dir: string): { stdin: Writable; done: Promise<void> } {
  const child = spawn('tar', ['-x', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar on the runner failed (exit ${code}): ${errors.trim()}`))));
  });
  done.catch(() => {});
  return { stdin: child.stdin, done };
}

