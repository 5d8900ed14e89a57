/**
 * Netcat transfers, for devices with nothing better (telnet-only boards): a listener is
 * started on the device through the host's command runner (SSH exec or a telnet session),
 * on a free port found with ss, netstat or /proc/net/tcp; the runner connects to it through
 * the host's network path (so hops work); the listener's lifetime is bounded by a watchdog
 * and it is killed afterwards whatever happened. Directories travel as tar streams into a
 * staging directory. Nothing takes its final name before it was verified. A failed attempt
 * is retried once on a new port.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, rm } from 'node:fs/promises';
import type { Duplex, Readable, Writable } from 'node:stream';

import type { NcOptions } from '../config/schema.js';
import type { NetworkPath } from '../transport/network.js';
import { ConnectionError, messageOf, TransferError } from '../util/errors.js';
import { signalProcessTree } from '../util/processTree.js';
import { shellQuote } from '../util/shellQuote.js';
import { sleep } from '../util/time.js';
import {
  commitDeviceFiles,
  type DeviceCommit,
  deviceShellSide,
  deviceTreeDigests,
  explainDevicePath,
  HELPER_TIMEOUT_MS,
  removeDevicePaths,
} from './deviceShell.js';
import { guardedDownload, guardedUpload, type TransferGuard } from './guard.js';
import { localPathOf, readLocalSource, sourceFiles } from './localTree.js';
import { devicePaths, pathError, placeDestination, runnerPaths, uploadFiles } from './paths.js';
import { commitRunnerFile, commitRunnerFiles, runnerPartials, runnerSide, stageRunnerFile } from './runnerSide.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';
import { checkDigest, checkSize, remoteShellPath, sha256File } from './verify.js';

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
    const socket = /(?:^|\s)(?:\S*[:.])(\d+)\s+\S*[:.](?:\*|\d+)(?:\s|$)/.exec(line);
    if (socket && /LISTEN/i.test(line)) ports.add(Number(socket[1]));
  }
  return ports;
}

/** Permission bits from the first field of `ls -l` (`-rwxr-x--- ...`), setuid/setgid/sticky included. */
export function modeFromLs(field: string): number | undefined {
  if (!/^[-dlcbps][-rwxsStT]{9}/.test(field)) return undefined;
  let mode = 0;
  const bits = field.slice(1, 10);
  for (let i = 0; i < 9; i++) {
    const c = bits[i]!;
    if (c !== '-' && c !== 'S' && c !== 'T') mode |= 1 << (8 - i);
  }
  if (/[sS]/.test(bits[2]!)) mode |= 0o4000;
  if (/[sS]/.test(bits[5]!)) mode |= 0o2000;
  if (/[tT]/.test(bits[8]!)) mode |= 0o1000;
  return mode;
}

type Flavour = 'openbsd' | 'traditional';

/** A listener on the device. */
interface Listener {
  pid: string;
  /** Kills the listener job, its children and its watchdog. */
  cleanup: () => Promise<void>;
}

/** What a device source is: a readable file (with size and mode), or a directory. */
type DeviceSource = { kind: 'file'; size: number; mode: number } | { kind: 'directory' };

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
      const result = await this.deps.runner.run(`command -v ${nc} >/dev/null 2>&1 || { echo LW_NO_NC; exit 0; }; ${nc} -h 2>&1 | head -5`, {
        timeout: HELPER_TIMEOUT_MS,
      });
      if (result.stdout.includes('LW_NO_NC')) {
        throw new TransferError(`"${nc}" is not installed on the device.`, {
          ...this.context,
          hint: 'Install netcat on the device, set nc.command to its path, or use another transfer method (sftp, scp, ftp).',
          kind: 'unsupported',
        });
      }
      return /OpenBSD/i.test(result.stdout) ? 'openbsd' : 'traditional';
    })();
    this.flavour.catch(() => (this.flavour = undefined));
    return this.flavour;
  }

  /** A free port in the configured range, avoiding every port the device listens on. */
  private async freePort(avoid: Set<number>): Promise<number> {
    const listing = await this.deps.runner.run('ss -Htln 2>/dev/null || netstat -ltn 2>/dev/null || cat /proc/net/tcp /proc/net/tcp6 2>/dev/null', {
      timeout: HELPER_TIMEOUT_MS,
    });
    const used = listeningPorts(listing.stdout);
    const [low, high] = this.deps.options.portRange;
    const candidates: number[] = [];
    for (let port = low; port <= high; port++) if (!used.has(port) && !avoid.has(port)) candidates.push(port);
    if (candidates.length === 0) {
      throw new TransferError(`no free port in nc.portRange ${low}-${high} on the device.`, {
        ...this.context,
        hint: 'Widen nc.portRange in the lab config.',
        kind: 'unsupported',
      });
    }
    return candidates[Math.floor(Math.random() * candidates.length)]!;
  }

  /**
   * Starts `nc` listening on the device in the background inside `wrap` (a redirection or a
   * pipeline around it), bounded by listenerLifetime.
   */
  private async listen(port: number, wrap: (nc: string) => string, sending: boolean): Promise<Listener> {
    const flavour = await this.detect();
    const { command, listenerLifetime } = this.deps.options;
    // OpenBSD nc keeps the connection open after its input ends unless told (-N) to shut it down.
    const nc = flavour === 'openbsd' ? `${command} -l${sending ? ' -N' : ''} ${port}` : `${command} -l -p ${port}`;
    const lifetime = Math.max(1, Math.ceil(listenerLifetime / 1000));
    // Every descriptor of the background job is redirected: it must not hold the SSH
    // channel (or the telnet terminal) of the command that started it.
    const script = `( ${wrap(nc)} ) </dev/null >/dev/null 2>&1 & lw_nc=$!; (sleep ${lifetime}; kill $lw_nc) </dev/null >/dev/null 2>&1 & echo "LW_PIDS $lw_nc $!"`;
    const result = await this.deps.runner.run(`sh -c ${shellQuote(script)}`, { timeout: HELPER_TIMEOUT_MS });
    const pids = /LW_PIDS (\d+) (\d+)/.exec(result.stdout);
    if (!pids)
      throw this.fail(
        `could not start the nc listener: ${(result.stderr || result.stdout).trim() || `exit ${result.exitCode}`}.`,
        'Check nc.command on the device.',
      );
    return {
      pid: pids[1]!,
      cleanup: async () => {
        await this.deps.runner.run(signalProcessTree([pids[1]!, pids[2]!], 'TERM'), { timeout: HELPER_TIMEOUT_MS });
      },
    };
  }

  /** Connects to the listener, retrying while it is not up yet (bounded by readyTimeout). */
  private async connect(port: number, guard: TransferGuard): Promise<Duplex> {
    const networkPath = await this.deps.path();
    const address = this.deps.options.address ?? this.deps.address;
    const deadline = Date.now() + this.deps.options.readyTimeout;
    for (;;) {
      try {
        // Half-open: a BusyBox `nc -l` ends its sending side as soon as its stdin (/dev/null
        // for an upload) ends, and the upload must go on after that.
        const socket = await guard.step(networkPath.connect(address, port, Math.max(500, deadline - Date.now()), this.context, { halfOpen: true }));
        guard.onStop((reason) => socket.destroy(reason));
        return socket;
      } catch (error) {
        const retryable = error instanceof ConnectionError && (error.kind === 'refused' || error.kind === 'reset');
        if (guard.reason || !retryable || Date.now() > deadline) {
          throw (
            guard.reason ??
            this.fail(
              `the nc listener on ${address}:${port} did not accept within ${this.deps.options.readyTimeout} ms: ${messageOf(error)}`,
              'Check that the runner (or the hop) can reach the device on nc.portRange (firewall), or set nc.address.',
              error,
            )
          );
        }
        await guard.step(sleep(100));
      }
    }
  }

  /**
   * One transfer over a listener: `attempt` gets the port of a started listener; the
   * listener is killed afterwards (in the background when the transfer failed: a dead
   * device cannot answer, and its watchdog ends the listener anyway). An attempt that
   * failed before any byte moved is retried once on a new port (unless the transfer was
   * stopped or nc is missing); a broken data connection is a `lost` error.
   */
  private async overListener(
    guard: TransferGuard,
    wrap: (nc: string) => string,
    sending: boolean,
    attempt: (port: number, listener: Listener) => Promise<void>,
  ): Promise<void> {
    const avoid = new Set<number>();
    for (let round = 1; ; round++) {
      let listener: Listener | undefined;
      const before = guard.bytes;
      try {
        const port = await guard.step(this.freePort(avoid));
        avoid.add(port);
        listener = await guard.step(this.listen(port, wrap, sending));
        await attempt(port, listener).catch((error: unknown) => {
          if (error instanceof TransferError || guard.reason || guard.bytes === before) throw error;
          throw new TransferError(`the nc data connection broke: ${messageOf(error)}.`, {
            ...this.context,
            hint: 'The device may have rebooted, or its nc was killed; check it and retry.',
            cause: error,
            kind: 'lost',
          });
        });
        await guard.step(listener.cleanup());
        return;
      } catch (error) {
        // Bounded by the runner's own timeout; its failure changes nothing.
        listener?.cleanup().catch(() => undefined);
        const final = round >= 2 || guard.reason || guard.bytes > before || (error instanceof TransferError && error.kind !== 'failed');
        if (final) throw error;
        // Check the device again (nc may be gone, or the listener failed to start), then retry once.
        this.flavour = undefined;
      }
    }
  }

  async put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
    return guardedUpload(this.context, this.deps.options.idleTimeout, localPath, remotePath, options, async (guard, source, totals) => {
      const started = Date.now();
      const { runner } = this.deps;
      const directory = source.kind === 'directory';
      const root = await guard.step(
        placeDestination(deviceShellSide(runner, this.context), remotePath, { directory, name: runnerPaths.basename(localPath) }, this.context),
      );
      const partials = guard.partials('device', (paths) => removeDevicePaths(runner, paths));
      // A file is received under a temporary name beside its final one; a tree into a staging directory inside the destination.
      const staging = directory ? devicePaths.join(root, `.lw-${randomBytes(4).toString('hex')}.part`) : undefined;
      const files = uploadFiles(source, localPath, root, options.mode, staging);
      const commits: DeviceCommit[] = files.map((file) => ({ ...file, expected: String(file.size) }));
      const landing = staging ?? commits[0]!.temp;
      // The listener's redirection would fail silently (nothing would accept): create the landing place first.
      const where = remoteShellPath(landing);
      const prepared = await guard.step(runner.run(staging ? `mkdir -p -- ${where}` : `: > ${where}`, { timeout: HELPER_TIMEOUT_MS }));
      if (prepared.exitCode !== 0) {
        const kind = await guard.step(explainDevicePath(runner, root, 'w'));
        throw pathError(kind === 'failed' ? 'denied' : kind, 'write', root, 'device', this.context);
      }
      partials.paths.add(landing);
      const receive = staging
        ? (nc: string) => `mkdir -p ${remoteShellPath(staging)} && ${nc} | tar -x -C ${remoteShellPath(staging)}`
        : (nc: string) => `${nc} > ${remoteShellPath(landing)}`;
      await this.overListener(guard, receive, false, async (port, listener) => {
        const socket = await this.connect(port, guard);
        const tar =
          source.kind === 'directory'
            ? tarCreate(
                localPath,
                source.entries.map((entry) => entry.relative),
              )
            : undefined;
        const data: Readable = tar?.stream ?? createReadStream(localPath);
        data.on('data', (chunk: Buffer) => guard.progress(chunk.length));
        guard.onStop(() => data.destroy());
        await guard.step(send(data, socket));
        if (tar) await guard.step(tar.done);
        await this.waitForExit(listener.pid, guard);
      });
      const verify = options.verify ?? this.deps.options.verify;
      if (verify === 'sha256') {
        const digests = await guard.step(Promise.all(files.map((file) => sha256File(file.local))), { quiet: true });
        commits.forEach((commit, index) => (commit.expected = digests[index]!));
      }
      const directories =
        source.kind === 'directory' ? source.entries.filter((entry) => entry.kind === 'directory').map((entry) => devicePaths.join(root, entry.relative)) : [];
      guard.check();
      await guard.step(
        commitDeviceFiles(
          runner,
          commits,
          { verify, bytes: totals.bytes, directories, cleanup: staging ? [staging] : [], what: `upload of ${localPath}` },
          this.context,
        ),
        { quiet: verify === 'sha256' },
      );
      partials.paths.clear();
      return {
        direction: 'put',
        method: 'nc',
        local: localPath,
        remote: remotePath,
        files: totals.files,
        bytes: totals.bytes,
        durationMs: Date.now() - started,
        verified: verify,
      };
    });
  }

  /** What the device source is; a path that cannot be read is a `missing` or `denied` error. */
  private async inspect(remotePath: string): Promise<DeviceSource> {
    const source = remoteShellPath(remotePath);
    const probe = await this.deps.runner.run(
      `if [ -d ${source} ]; then echo LW_DIR; elif [ -f ${source} ] && [ -r ${source} ]; then echo "LW_FILE $(wc -c < ${source} | tr -d ' ') $(ls -ld ${source} | cut -c1-10)"; else echo LW_NONE; fi`,
      { timeout: HELPER_TIMEOUT_MS },
    );
    const answer = probe.stdout.trim().split('\n').pop() ?? '';
    if (answer === 'LW_DIR') return { kind: 'directory' };
    const file = /^LW_FILE (\d+) (\S+)/.exec(answer);
    if (file) return { kind: 'file', size: Number(file[1]), mode: modeFromLs(file[2]!) ?? 0o644 };
    const kind = await explainDevicePath(this.deps.runner, remotePath, 'r');
    if (kind === 'missing' || kind === 'denied' || kind === 'not-a-directory') throw pathError(kind, 'read', remotePath, 'device', this.context);
    // Exists, readable, neither file nor directory: a device node or a pipe.
    throw pathError('unsupported', 'read the special file', remotePath, 'device', this.context);
  }

  async get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult> {
    return guardedDownload(this.context, this.deps.options.idleTimeout, remotePath, localPath, options, async (guard) => {
      const started = Date.now();
      const verify = options.verify ?? this.deps.options.verify;
      const source = await guard.step(this.inspect(remotePath));
      const root = await placeDestination(
        runnerSide(this.context),
        localPath,
        { directory: source.kind === 'directory', name: devicePaths.basename(remotePath) },
        this.context,
      );
      const partials = runnerPartials(guard);
      const from = remoteShellPath(remotePath);
      if (source.kind === 'file') {
        guard.setTotal(source.size);
        const temp = stageRunnerFile(partials, root);
        await this.overListener(
          guard,
          (nc) => `${nc} < ${from}`,
          true,
          async (port) => {
            const socket = await this.connect(port, guard);
            await guard.step(receive(socket, createWriteStream(temp), source.size, (count) => guard.progress(count)));
          },
        );
        const verified = await commitRunnerFiles(
          guard,
          partials,
          [{ temp, final: root, remote: remotePath, size: source.size, mode: options.mode ?? source.mode }],
          verify,
          this.deps.runner,
          this.context,
        );
        return {
          direction: 'get',
          method: 'nc',
          local: localPath,
          remote: remotePath,
          files: 1,
          bytes: source.size,
          durationMs: Date.now() - started,
          verified,
        };
      }
      // A tree: the device's sizes first (what must arrive), then a tar stream into a staging directory.
      const sizes = await guard.step(deviceTreeDigests(this.deps.runner, remotePath, 'size', 0, this.context));
      const total = [...sizes.values()].reduce((sum, size) => sum + Number(size), 0);
      guard.setTotal(total);
      const staging = runnerPaths.join(root, `.lw-${randomBytes(4).toString('hex')}.part`);
      partials.paths.add(staging);
      await this.overListener(
        guard,
        (nc) => `tar -c -C ${from} . | ${nc}`,
        true,
        async (port) => {
          await rm(staging, { recursive: true, force: true });
          await mkdir(staging, { recursive: true });
          const socket = await this.connect(port, guard);
          const extract = tarExtract(staging);
          guard.onStop(() => extract.kill());
          await guard.step(receive(socket, extract.stdin, undefined, (count) => guard.progress(count)));
          // The runner's tar must have written every file before anything is verified.
          await guard.step(extract.done);
        },
      );
      const arrived = await readLocalSource(staging);
      const files = sourceFiles(arrived);
      const what = `get of ${remotePath}`;
      if (files.length !== sizes.size) {
        throw new TransferError(`${what} is incomplete: ${files.length} file(s) arrived of ${sizes.size}.`, {
          ...this.context,
          hint: 'Transfer again; check free space on the runner.',
          kind: 'incomplete',
        });
      }
      if (verify !== 'none') {
        for (const file of files) checkSize(Number(sizes.get(file.relative) ?? -1), file.size, `download of ${file.relative}`, this.context);
      }
      if (verify === 'sha256') {
        const remote = await guard.step(deviceTreeDigests(this.deps.runner, remotePath, 'sha256', total, this.context), { quiet: true });
        for (const file of files)
          checkDigest(
            remote.get(file.relative) ?? 'unreadable',
            await sha256File(localPathOf(staging, file.relative)),
            `download of ${file.relative}`,
            this.context,
          );
      }
      for (const entry of arrived.kind === 'directory' ? arrived.entries : []) {
        const final = runnerPaths.join(root, ...entry.relative.split('/'));
        if (entry.kind === 'directory') await mkdir(final, { recursive: true });
        else {
          guard.check();
          await commitRunnerFile(
            partials,
            localPathOf(staging, entry.relative),
            final,
            options.mode ?? (await lstat(localPathOf(staging, entry.relative))).mode,
          );
        }
      }
      await rm(staging, { recursive: true, force: true });
      partials.paths.delete(staging);
      return {
        direction: 'get',
        method: 'nc',
        local: localPath,
        remote: remotePath,
        files: files.length,
        bytes: total,
        durationMs: Date.now() - started,
        verified: verify,
      };
    });
  }

  /** After the last byte went out the receiving side writes and exits; wait (bounded) for that before verifying. */
  private async waitForExit(pid: string, guard: TransferGuard): Promise<void> {
    // A finished job may linger as a zombie (PID 1 of a container may not reap): Z counts as gone.
    const check = `if [ -r /proc/${pid}/stat ]; then s=$(sed 's/.*) //' /proc/${pid}/stat | cut -c1); [ "$s" = Z ] && echo gone || echo alive; else kill -0 ${pid} 2>/dev/null && echo alive || echo gone; fi`;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const alive = await guard.step(this.deps.runner.run(check, { timeout: HELPER_TIMEOUT_MS }));
      if (alive.stdout.includes('gone')) return;
      await guard.step(sleep(100));
    }
  }

  async close(): Promise<void> {}
}

/**
 * Sends `source` into the socket and ends it. The device may close the connection as soon
 * as it has what it needs (its tar stops at the end-of-archive blocks, BusyBox nc closes
 * when its input ends) while the source has yet to signal its end: that is no failure as
 * long as the source has no byte left (verification checks what arrived).
 */
function send(source: Readable, socket: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let closed = false;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      source.unpipe(socket);
      if (!error) return resolve();
      source.destroy();
      reject(error);
    };
    const afterClose = (error?: unknown) => {
      if (closed) return;
      closed = true;
      if (source.readableEnded) return settle();
      source.unpipe(socket);
      source.on('data', () => settle(error ?? new Error('the device closed the connection before all data was sent')));
      source.resume();
    };
    source.on('error', settle);
    source.on('end', () => (closed ? settle() : socket.end()));
    socket.on('finish', () => source.readableEnded && settle());
    socket.on('error', afterClose);
    socket.on('close', () => afterClose());
    // Nothing is expected back, but the device's end of stream must be read: an SSH channel
    // (a hop) only reports 'close' once its readable side has ended.
    socket.resume();
    source.pipe(socket, { end: false });
  });
}

/**
 * Copies the socket into `sink` until it closes or, when the size is known, until that
 * many bytes arrived (some netcats keep the connection open after sending).
 */
function receive(socket: Duplex, sink: Writable, expected: number | undefined, progress: (count: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let done = false;
    const finish = (error?: unknown) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (error) {
        sink.destroy();
        return reject(error);
      }
      // A tar that read its end-of-archive may have exited already (Node then destroys its
      // stdin) or may break the pipe now: what it extracted is judged by its exit status
      // and the verification, so any end of the sink will do.
      if (sink.destroyed || sink.writableFinished) return resolve();
      for (const event of ['finish', 'close', 'error']) sink.once(event, () => resolve());
      sink.end();
    };
    sink.once('error', finish);
    socket.on('error', finish);
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('data', (chunk: Buffer) => {
      const take = expected === undefined ? chunk : chunk.subarray(0, Math.max(0, expected - received));
      received += take.length;
      progress(take.length);
      if (take.length > 0 && !sink.write(take)) {
        socket.pause();
        sink.once('drain', () => socket.resume());
      }
      if (expected !== undefined && received >= expected) finish();
    });
    if (expected === 0) finish();
  });
}

/** A tar stream of exactly `entries` (relative paths, parents first) of `dir`, from the runner's tar; `done` settles when tar exits. */
function tarCreate(dir: string, entries: string[]): { stream: Readable; done: Promise<void> } {
  const child = spawn('tar', ['-c', '-C', dir, '--no-recursion', '--null', '-T', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(entries.map((entry) => `${entry}\0`).join(''));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar on the runner failed (exit ${code}): ${errors.trim()}`))));
  });
  done.catch(() => {});
  return { stream: child.stdout, done };
}

/** Extracts a tar stream into a directory with the runner's tar (permissions kept); `done` settles when tar exits. */
function tarExtract(dir: string): { stdin: Writable; done: Promise<void>; kill: () => void } {
  const child = spawn('tar', ['-x', '-p', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  child.stdin.on('error', () => {});
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar on the runner failed (exit ${code}): ${errors.trim()}`))));
  });
  done.catch(() => {});
  return { stdin: child.stdin, done, kill: () => child.kill('SIGKILL') };
}
