/**
 * SCP transfers with the classic protocol spoken to the device's `scp -t` (sink) and
 * `scp -f` (source) over an exec channel: files and directories both ways, progress,
 * size verification. Works on devices with an scp binary but no SFTP server.
 */
import { createWriteStream, createReadStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ClientChannel } from 'ssh2';
import type { ScpOptions } from '../config/schema.js';
import { TransferError, messageOf } from '../util/errors.js';
import type { ByteReader } from './byteReader.js';
import { checkDigest, checkSize, remoteShellPath, remoteTreeDigests, sha256File } from './verify.js';
import type { RemoteRunner, TransferOptions, TransferResult, TransferStrategy } from './types.js';

/** Opens an exec channel for `command` whose output is read through the returned reader. */
export type ScpChannelOpener = (command: string) => Promise<{ channel: ClientChannel; reader: ByteReader }>;

export interface ScpDeps {
  host: string;
  options: ScpOptions;
  open: ScpChannelOpener;
  runner: RemoteRunner;
}

/** Bound on each protocol reply and on idle gaps in file data. */
const REPLY_TIMEOUT = 60_000;

interface LocalFile {
  local: string;
  relative: string;
  size: number;
}

export class ScpTransfer implements TransferStrategy {
  readonly method = 'scp' as const;

  constructor(private readonly deps: ScpDeps) {}

  private get context() {
    return { host: this.deps.host, protocol: 'scp' as const };
  }

  private error(detail: string, cause?: unknown): TransferError {
    return new TransferError(detail, { ...this.context, hint: 'Check the remote path and permissions, and that the device has an scp binary (scp.command).', cause });
  }

  /** Reads the sink/source status byte: 0 ok, 1 warning, 2 fatal (both followed by a message line). */
  private async expectOk(reader: ByteReader, what: string): Promise<void> {
    const status = await reader.byte(REPLY_TIMEOUT);
    if (status === 0) return;
    const message = status === 1 || status === 2 ? await reader.line(REPLY_TIMEOUT) : `unexpected byte ${status}`;
    throw this.error(`the device's scp refused ${what}: ${message.trim()}.`);
  }

  async put(localPath: string, remotePath: string, options: TransferOptions): Promise<TransferResult> {
    const started = Date.now();
    const info = await stat(localPath).catch((error: unknown) => {
      throw this.error(`cannot read ${localPath}: ${messageOf(error)}.`, error);
    });
    const directory = info.isDirectory();
    const files: LocalFile[] = directory ? await listLocal(localPath, '') : [{ local: localPath, relative: path.posix.basename(remotePath), size: info.size }];
    const total = files.reduce((sum, file) => sum + file.size, 0);
    const parent = path.posix.dirname(remotePath);
    const { channel, reader } = await this.deps.open(`${this.deps.options.command} ${directory ? '-r ' : ''}-t -- ${remoteShellPath(parent)}`);
    let done = 0;
    try {
      await this.expectOk(reader, 'the transfer');
      let closed = false;
      channel.once('close', () => (closed = true));
      // Respect the channel's flow control; a closed channel never drains (or calls back).
      const write = async (data: string | Buffer) => {
        if (closed) throw new Error('the channel closed');
        if (channel.write(data)) return;
        await new Promise<void>((resolve) => {
          const done = () => {
            channel.off('drain', done);
            channel.off('close', done);
            resolve();
          };
          channel.once('drain', done);
          channel.once('close', done);
        });
      };
      const sendFile = async (file: LocalFile, name: string) => {
        const mode = ((await stat(file.local)).mode & 0o777).toString(8).padStart(4, '0');
        await write(`C${(options.mode ?? Number.parseInt(mode, 8)).toString(8).padStart(4, '0')} ${file.size} ${name}\n`);
        await this.expectOk(reader, `${name}`);
        for await (const chunk of createReadStream(file.local, { highWaterMark: 256 * 1024 })) {
          await write(chunk as Buffer);
          done += (chunk as Buffer).length;
          options.onProgress?.(done, total);
        }
        await write(Buffer.from([0]));
        await this.expectOk(reader, `the data of ${name}`);
      };
      if (!directory) {
        await sendFile(files[0]!, path.posix.basename(remotePath));
      } else {
        await write(`D0755 0 ${path.posix.basename(remotePath)}\n`);
        await this.expectOk(reader, `directory ${remotePath}`);
        await this.sendTree(localPath, write, reader, sendFile);
        await write('E\n');
        await this.expectOk(reader, 'the end of the directory');
      }
    } catch (error) {
      if (error instanceof TransferError) throw error;
      throw this.error(`upload of ${localPath} to ${remotePath} failed: ${messageOf(error)}.`, error);
    } finally {
      channel.end();
      channel.close();
    }
    const verified = await this.verifyPut(localPath, remotePath, directory, files, options.verify ?? this.deps.options.verify);
    return { direction: 'put', method: 'scp', local: localPath, remote: remotePath, files: files.length, bytes: total, durationMs: Date.now() - started, verified };
  }

  private async sendTree(
    dir: string,
    write: (data: string | Buffer) => Promise<void>,
    reader: ByteReader,
    sendFile: (file: LocalFile, name: string) => Promise<void>,
  ): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const local = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        await write(`D0755 0 ${entry.name}\n`);
        await this.expectOk(reader, `directory ${entry.name}`);
        await this.sendTree(local, write, reader, sendFile);
        await write('E\n');
        await this.expectOk(reader, 'the end of a directory');
      } else if (entry.isFile()) {
        await sendFile({ local, relative: entry.name, size: (await stat(local)).size }, entry.name);
      }
    }
  }

  async get(remotePath: string, localPath: string, options: TransferOptions): Promise<TransferResult> {
    const started = Date.now();
    const { channel, reader } = await this.deps.open(`${this.deps.options.command} -r -f -- ${remoteShellPath(remotePath)}`);
    const received: LocalFile[] = [];
    let bytes = 0;
    try {
      channel.write(Buffer.from([0]));
      const stack: string[] = [];
      let topIsDir = false;
      for (;;) {
        let first: number;
        try {
          first = await reader.byte(REPLY_TIMEOUT);
        } catch {
          break; // the source finished and closed the channel
        }
        if (first === 1 || first === 2) {
          const message = (await reader.line(REPLY_TIMEOUT)).trim();
          throw this.error(`the device's scp cannot send ${remotePath}: ${message}.`);
        }
        const line = String.fromCharCode(first) + (await reader.line(REPLY_TIMEOUT));
        const kind = line[0];
        if (kind === 'T') {
          channel.write(Buffer.from([0]));
          continue;
        }
        if (kind === 'E') {
          stack.pop();
          channel.write(Buffer.from([0]));
          continue;
        }
        const match = /^([CD])([0-7]{4}) (\d+) (.+)$/.exec(line);
        if (!match) throw this.error(`unexpected scp protocol line ${JSON.stringify(line.slice(0, 80))}.`);
        const [, type, , sizeText, name] = match;
        // The top-level entry lands at localPath itself, whatever its remote name.
        const target = stack.length === 0 ? localPath : path.join(stack[stack.length - 1]!, name!);
        if (type === 'D') {
          if (stack.length === 0) topIsDir = true;
          await mkdir(target, { recursive: true });
          stack.push(target);
          channel.write(Buffer.from([0]));
          continue;
        }
        const size = Number(sizeText);
        await mkdir(path.dirname(path.resolve(target)), { recursive: true });
        channel.write(Buffer.from([0]));
        const out = createWriteStream(target);
        await reader.payload(size, REPLY_TIMEOUT, async (chunk) => {
          if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
          bytes += chunk.length;
          options.onProgress?.(bytes, bytes);
        });
        await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
        await this.expectOk(reader, `the end of ${name}`);
        channel.write(Buffer.from([0]));
        received.push({ local: target, relative: topIsDir ? path.relative(localPath, target) : '', size });
        if (stack.length === 0) break;
      }
    } catch (error) {
      if (error instanceof TransferError) throw error;
      throw this.error(`download of ${remotePath} failed: ${messageOf(error)}.`, error);
    } finally {
      channel.end();
      channel.close();
    }
    if (received.length === 0 && !(await stat(localPath).then((s) => s.isDirectory(), () => false))) {
      throw this.error(`the device's scp sent nothing for ${remotePath}.`);
    }
    const verified = await this.verifyGet(remotePath, received, options.verify ?? this.deps.options.verify);
    return { direction: 'get', method: 'scp', local: localPath, remote: remotePath, files: received.length, bytes, durationMs: Date.now() - started, verified };
  }

  async close(): Promise<void> {}

  private async verifyPut(localPath: string, remotePath: string, directory: boolean, files: LocalFile[], mode: TransferOptions['verify']): Promise<NonNullable<TransferOptions['verify']>> {
    if (mode === 'none' || mode === undefined) return 'none';
    const remote = await remoteTreeDigests(this.deps.runner, remotePath, directory, mode, this.context);
    for (const file of files) {
      const key = directory ? path.relative(localPath, file.local).split(path.sep).join('/') : '';
      const actual = remote.get(key);
      const what = `upload of ${file.local}`;
      if (actual === undefined) throw this.error(`${what}: the file is missing on the device after the transfer.`);
      if (mode === 'size') checkSize(file.size, Number(actual), what, this.context);
      else checkDigest(await sha256File(file.local), actual, what, this.context);
    }
    return mode;
  }

  private async verifyGet(remotePath: string, received: LocalFile[], mode: TransferOptions['verify']): Promise<NonNullable<TransferOptions['verify']>> {
    if (mode === 'none' || mode === undefined) return 'none';
    // The protocol announced each size; check what landed on disk against it.
    for (const file of received) checkSize(file.size, (await stat(file.local)).size, `download of ${file.local}`, this.context);
    if (mode === 'sha256') {
      const directory = received.some((file) => file.relative !== '');
      const remote = await remoteTreeDigests(this.deps.runner, remotePath, directory, 'sha256', this.context);
      for (const file of received) {
        checkDigest(remote.get(file.relative.split(path.sep).join('/')) ?? '', await sha256File(file.local), `download of ${remotePath}`, this.context);
      }
    }
    return mode;
  }
}

async function listLocal(root: string, prefix: string): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  for (const entry of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    const local = path.join(root, relative);
    if (entry.isDirectory()) files.push(...(await listLocal(root, relative)));
    else if (entry.isFile()) files.push({ local, relative, size: (await stat(local)).size });
  }
  return files;
}
