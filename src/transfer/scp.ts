/**
 * SCP transfers with the classic protocol spoken to the device's `scp -t` (sink) and
 * `scp -f` (source) over an exec channel: files and directories both ways, for devices with
 * an scp binary but no SFTP server. Uploaded files are written under temporary names, then
 * verified and renamed on the device in one command; downloads land under temporary names
 * on the runner and are renamed once verified.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Writable } from 'node:stream';

import type { ClientChannel } from 'ssh2';

import type { ScpOptions } from '../config/schema.js';
import { TransferError } from '../util/errors.js';
import { quoteForMessage } from '../util/secrets.js';
import { ByteReader } from './byteReader.js';
import { commitDeviceFiles, type DeviceCommit, deviceShellSide, explainDevicePath, removeDevicePaths } from './deviceShell.js';
import { guardedDownload, guardedUpload, type TransferGuard } from './guard.js';
import { devicePaths, pathError, placeDestination, runnerPaths, type UploadFile, uploadFiles } from './paths.js';
import { commitRunnerFiles, type LandedFile, runnerPartials, runnerSide, stageRunnerFile } from './runnerSide.js';
import type { LossSubscription, RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';
import { remoteShellPath, sha256File } from './verify.js';

/** Opens an exec channel running `command` (waiting up to `slotWaitMs` for a free channel), with the loss of its connection. */
export type ScpChannelOpener = (command: string, slotWaitMs: number) => Promise<{ channel: ClientChannel; onLost: LossSubscription }>;

export interface ScpDeps {
  host: string;
  options: ScpOptions;
  open: ScpChannelOpener;
  runner: RemoteRunner;
}

/** Mode temporary files are created with (readable for verification); the final mode is set when they are renamed. */
const TEMP_MODE = '0600';

/** The channel of one scp command, tied to the transfer's guard. */
interface ScpChannel {
  reader: ByteReader;
  /** Writes with the channel's flow control; fails once the channel closed or the transfer stopped. */
  write(data: string | Buffer): Promise<void>;
  /** Sends the status byte 0 (ok). */
  ok(): Promise<void>;
  /** Ends the channel (its slot comes back once the device closes it too). */
  end(): void;
}

export class ScpTransfer implements TransferStrategy {
  readonly method = 'scp' as const;

  constructor(private readonly deps: ScpDeps) {}

  private get context() {
    return { host: this.deps.host, protocol: 'scp' as const };
  }

  private async channel(guard: TransferGuard, command: string): Promise<ScpChannel> {
    const { channel, onLost } = await guard.step(this.deps.open(command, guard.idleTimeout), { quiet: true });
    guard.watch(onLost);
    channel.stderr.resume();
    let closed = false;
    channel.once('close', () => (closed = true));
    guard.onStop(() => channel.close());
    const end = () => {
      channel.end();
      channel.close();
    };
    guard.onFinish(end);
    const write = async (data: string | Buffer) => {
      if (closed) throw new Error('the channel closed');
      if (channel.write(data)) return;
      // A closed channel never drains: wait for whichever comes first.
      await guard.step(
        new Promise<void>((resolve) => {
          const resume = () => {
            channel.off('drain', resume);
            channel.off('close', resume);
            resolve();
          };
          channel.once('drain', resume);
          channel.once('close', resume);
        }),
      );
    };
    return { reader: new ByteReader(channel, guard.signal), write, ok: () => write(Buffer.from([0])), end };
  }

  /** Reads the peer's status byte: 0 ok, 1 warning, 2 fatal (both followed by a message line). */
  private async expectOk(guard: TransferGuard, reader: ByteReader, what: string): Promise<void> {
    const status = await guard.step(reader.byte());
    if (status === 0) return;
    const message = status === 1 || status === 2 ? await guard.step(reader.line()) : `unexpected byte ${status}`;
    throw new TransferError(`the device's scp refused ${what}: ${message.trim()}.`, {
      ...this.context,
      hint: 'Check the remote path, its permissions and free space, and that the device has an scp binary (scp.command).',
    });
  }

  async put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
    return guardedUpload(this.context, this.deps.options.idleTimeout, localPath, remotePath, options, async (guard, source, totals) => {
      const started = Date.now();
      const { runner } = this.deps;
      const root = await guard.step(
        placeDestination(
          deviceShellSide(runner, this.context),
          remotePath,
          { directory: source.kind === 'directory', name: runnerPaths.basename(localPath) },
          this.context,
        ),
      );
      const directory = source.kind === 'directory';
      const files = uploadFiles(source, localPath, root, options.mode);
      const commits: DeviceCommit[] = files.map((file) => ({ ...file, expected: String(file.size) }));
      const partials = guard.partials('device', (paths) => removeDevicePaths(runner, paths));
      const sink = directory ? root : devicePaths.dirname(root);
      const scp = await this.channel(guard, `${this.deps.options.command} ${directory ? '-r ' : ''}-t -- ${remoteShellPath(sink)}`);
      await this.expectOk(guard, scp.reader, 'the transfer');
      const sendFile = async (file: UploadFile) => {
        const name = devicePaths.basename(file.temp);
        partials.paths.add(file.temp);
        await scp.write(`C${TEMP_MODE} ${file.size} ${name}\n`);
        await this.expectOk(guard, scp.reader, name).catch(async (error: unknown) => {
          // The sink could not create the file: tell missing from denied on the device.
          if (guard.reason || !(error instanceof TransferError)) throw error;
          const kind = await explainDevicePath(runner, file.final, 'w').catch(() => 'failed' as const);
          throw kind === 'failed' ? error : pathError(kind, 'write', file.final, 'device', this.context, error);
        });
        for await (const chunk of createReadStream(file.local, { highWaterMark: 256 * 1024 })) {
          await scp.write(chunk as Buffer);
          guard.progress((chunk as Buffer).length);
        }
        await scp.ok();
        await this.expectOk(guard, scp.reader, `the data of ${name}`);
      };
      if (source.kind === 'directory') {
        // The sink creates directories as D lines announce them and leaves them with E lines.
        const open: string[] = [];
        const byPath = new Map(files.map((file) => [file.relative, file]));
        for (const entry of source.entries) {
          const parent = entry.relative.includes('/') ? entry.relative.slice(0, entry.relative.lastIndexOf('/')) : '';
          while (open.length > 0 && open.at(-1) !== parent && !parent.startsWith(`${open.at(-1)}/`)) {
            open.pop();
            await scp.write('E\n');
            await this.expectOk(guard, scp.reader, 'the end of a directory');
          }
          if (entry.kind === 'directory') {
            await scp.write(`D${(entry.mode & 0o7777).toString(8).padStart(4, '0')} 0 ${devicePaths.basename(entry.relative)}\n`);
            await this.expectOk(guard, scp.reader, `directory ${entry.relative}`);
            open.push(entry.relative);
          } else {
            await sendFile(byPath.get(entry.relative)!);
          }
        }
        for (; open.length > 0; open.pop()) {
          await scp.write('E\n');
          await this.expectOk(guard, scp.reader, 'the end of a directory');
        }
      } else {
        await sendFile(files[0]!);
      }
      // The device's commands below need a channel: with a small MaxSessions this one must be given back first.
      scp.end();
      const verify = options.verify ?? this.deps.options.verify;
      if (verify === 'sha256') {
        const digests = await guard.step(Promise.all(files.map((file) => sha256File(file.local))), { quiet: true });
        commits.forEach((commit, index) => (commit.expected = digests[index]!));
      }
      guard.check();
      await guard.step(commitDeviceFiles(runner, commits, { verify, bytes: totals.bytes, what: `upload of ${localPath}` }, this.context), {
        quiet: verify === 'sha256',
      });
      partials.paths.clear();
      return {
        direction: 'put',
        method: 'scp',
        local: localPath,
        remote: remotePath,
        files: totals.files,
        bytes: totals.bytes,
        durationMs: Date.now() - started,
        verified: verify,
      };
    });
  }

  async get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult> {
    return guardedDownload(this.context, this.deps.options.idleTimeout, remotePath, localPath, options, async (guard) => {
      const started = Date.now();
      const scp = await this.channel(guard, `${this.deps.options.command} -r -f -- ${remoteShellPath(remotePath)}`);
      await scp.ok();
      const partials = runnerPartials(guard);
      const landed: LandedFile[] = [];
      let root: string | undefined;
      /** Open directories: runner path and device path. */
      const stack: Array<{ local: string; remote: string }> = [];
      for (;;) {
        const first = await guard.step(scp.reader.byte());
        if (first === 1 || first === 2) {
          const message = (await guard.step(scp.reader.line())).trim();
          throw await this.sourceRefused(remotePath, message);
        }
        const line = String.fromCharCode(first) + (await guard.step(scp.reader.line()));
        if (line.startsWith('T')) {
          await scp.ok();
          continue;
        }
        if (line.startsWith('E')) {
          stack.pop();
          await scp.ok();
          if (stack.length === 0) break;
          continue;
        }
        const match = /^([CD])([0-7]{4}) (\d+) (.+)$/.exec(line);
        if (!match) throw new TransferError(`unexpected scp protocol line ${quoteForMessage(line, 80, 'start')}.`, this.context);
        const [, type, modeText, sizeText, name] = match;
        if (!isSafeName(name!)) throw new TransferError(`the device's scp sent the unsafe name ${JSON.stringify(name)}.`, this.context);
        if (root === undefined) {
          root = await placeDestination(runnerSide(this.context), localPath, { directory: type === 'D', name: name! }, this.context);
        }
        const parent = stack.at(-1);
        const local = parent ? runnerPaths.join(parent.local, name!) : root;
        const remote = parent ? devicePaths.join(parent.remote, name!) : remotePath;
        if (type === 'D') {
          await mkdir(local, { recursive: true });
          stack.push({ local, remote });
          await scp.ok();
          continue;
        }
        const size = Number(sizeText);
        // The total grows as the source announces files.
        guard.setTotal(landed.reduce((sum, file) => sum + file.size, size));
        const temp = stageRunnerFile(partials, local);
        await scp.ok();
        await this.receive(guard, scp, temp, size);
        await this.expectOk(guard, scp.reader, `the end of ${name}`);
        await scp.ok();
        landed.push({ temp, final: local, remote, size, mode: options.mode ?? Number.parseInt(modeText!, 8) });
        if (stack.length === 0) break;
      }
      scp.end();
      const verified = await commitRunnerFiles(guard, partials, landed, options.verify ?? this.deps.options.verify, this.deps.runner, this.context);
      const bytes = landed.reduce((sum, file) => sum + file.size, 0);
      return { direction: 'get', method: 'scp', local: localPath, remote: remotePath, files: landed.length, bytes, durationMs: Date.now() - started, verified };
    });
  }

  async close(): Promise<void> {}

  /** Writes `size` bytes from the channel into `temp`, with backpressure. */
  private async receive(guard: TransferGuard, scp: ScpChannel, temp: string, size: number): Promise<void> {
    const out: Writable = createWriteStream(temp);
    const failed = new Promise<never>((_, reject) => out.once('error', reject));
    failed.catch(() => {});
    try {
      await Promise.race([
        failed,
        guard.step(
          scp.reader.payload(size, async (chunk) => {
            guard.progress(chunk.length);
            if (!out.write(chunk)) await guard.step(new Promise<void>((resolve) => out.once('drain', () => resolve())));
          }),
        ),
      ]);
      await Promise.race([failed, new Promise<void>((resolve) => out.end(() => resolve()))]);
    } finally {
      out.destroy();
    }
  }

  /** The error for a refused source: missing and denied told apart on the device. */
  private async sourceRefused(remotePath: string, message: string): Promise<TransferError> {
    const kind = await explainDevicePath(this.deps.runner, remotePath, 'r').catch(() => 'failed' as const);
    if (kind === 'missing' || kind === 'denied' || kind === 'not-a-directory') return pathError(kind, 'read', remotePath, 'device', this.context);
    return new TransferError(`the device's scp cannot send ${remotePath}: ${message}.`, {
      ...this.context,
      hint: 'Check the remote path and that the device has an scp binary (scp.command).',
    });
  }
}

/** A name from the device that stays inside the destination. */
function isSafeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}
