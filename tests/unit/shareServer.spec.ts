/**
 * The share's SSH+SFTP server in-process (ssh2's client over a loopback socket; no
 * containers): key-only access, SFTP only, the v3 operations, read-only mode, pause.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';
import type { SFTPWrapper } from 'ssh2';
import ssh2 from 'ssh2';

import { type KeyPair, oneTimeKeyPair } from '../../src/share/oneTimeKeys.js';
import { ShareRoot } from '../../src/share/shareRoot.js';
import { ShareServer } from '../../src/share/shareServer.js';

const STATUS = ssh2.utils.sftp.STATUS_CODE;

interface Harness {
  base: string;
  share: string;
  server: ShareServer;
  clientKey: KeyPair;
  connect(options?: Partial<ssh2.ConnectConfig>): Promise<ssh2.Client>;
  sftp(client?: ssh2.Client): Promise<SFTPWrapper>;
  close(): Promise<void>;
}

async function harness(readOnly = false): Promise<Harness> {
  const base = mkdtempSync(path.join(os.tmpdir(), 'lw-share-srv-'));
  const share = path.join(base, 'share');
  mkdirSync(path.join(share, 'sub'), { recursive: true });
  writeFileSync(path.join(base, 'secret.txt'), 'SECRET');
  mkdirSync(path.join(base, 'outdir'));
  writeFileSync(path.join(share, 'hello.txt'), 'hello');
  writeFileSync(path.join(share, 'sub', 'deep.txt'), 'deep');
  symlinkSync(path.join(base, 'secret.txt'), path.join(share, 'out'));
  symlinkSync(path.join(base, 'outdir'), path.join(share, 'outdir'));
  const hostKey = oneTimeKeyPair('host');
  const clientKey = oneTimeKeyPair('client');
  const server = new ShareServer({ root: await ShareRoot.open(share), readOnly, hostKey: hostKey.privateKey, clientKey: clientKey.publicKey });
  const listener = net.createServer((socket) => server.accept(socket));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const clients: ssh2.Client[] = [];
  const connect = (options: Partial<ssh2.ConnectConfig> = {}) =>
    new Promise<ssh2.Client>((resolve, reject) => {
      const client = new ssh2.Client();
      clients.push(client);
      client
        .on('ready', () => resolve(client))
        .on('error', reject)
        .connect({ host: '127.0.0.1', port, username: 'share', privateKey: clientKey.privateKey, readyTimeout: 5_000, ...options });
    });
  const sftp = async (client?: ssh2.Client) => {
    const c = client ?? (await connect());
    return new Promise<SFTPWrapper>((resolve, reject) => c.sftp((error, session) => (error ? reject(error) : resolve(session))));
  };
  return {
    base,
    share,
    server,
    clientKey,
    connect,
    sftp,
    close: async () => {
      clients.forEach((client) => client.end());
      await server.close();
      listener.close();
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Runs an SFTP client call; resolves with its value or `{ code }` of its error. */
function call<T = unknown>(
  body: (cb: (error: (Error & { code?: number }) | null | undefined, value?: T) => void) => void,
): Promise<T | { code: number | undefined; message: string }> {
  return new Promise((resolve) => body((error, value) => resolve(error ? { code: error.code, message: error.message } : (value as T))));
}

const denied = { code: STATUS.PERMISSION_DENIED };

test.describe('access', () => {
  test('only the share key logs in; other keys and passwords are refused', async () => {
    const h = await harness();
    await h.connect();
    const wrong = oneTimeKeyPair('wrong');
    await expect(h.connect({ privateKey: wrong.privateKey })).rejects.toThrow(/authentication methods failed/);
    await expect(h.connect({ privateKey: undefined, password: 'anything', tryKeyboard: true })).rejects.toThrow(/authentication methods failed/);
    await h.close();
  });

  test('only the sftp subsystem is offered: no exec, shell or forwarding', async () => {
    const h = await harness();
    const client = await h.connect();
    const exec = await new Promise<string>((resolve) => client.exec('id', (error) => resolve(error ? error.message : 'opened')));
    expect(exec).not.toBe('opened');
    const shell = await new Promise<string>((resolve) => client.shell((error) => resolve(error ? error.message : 'opened')));
    expect(shell).not.toBe('opened');
    const tunnel = await new Promise<string>((resolve) =>
      client.forwardOut('127.0.0.1', 0, '127.0.0.1', 22, (error) => resolve(error ? error.message : 'opened')),
    );
    expect(tunnel).not.toBe('opened');
    await h.close();
  });
});

test.describe('sftp operations', () => {
  test('read, write, append, stat and directory listing', async () => {
    const h = await harness();
    const sftp = await h.sftp();
    expect(await call((cb) => sftp.realpath('.', cb))).toBe('/');
    expect(String(await call((cb) => sftp.readFile('/hello.txt', cb)))).toBe('hello');
    expect(await call((cb) => sftp.writeFile('/sub/new.txt', 'one', cb))).toBeUndefined();
    expect(await call((cb) => sftp.appendFile('/sub/new.txt', '+two', cb))).toBeUndefined();
    expect(readFileSync(path.join(h.share, 'sub', 'new.txt'), 'utf8')).toBe('one+two');
    expect(await call((cb) => sftp.stat('sub/new.txt', cb))).toMatchObject({ size: 7 });
    const listing = (await call<Array<{ filename: string; longname: string }>>((cb) => sftp.readdir('/', cb))) as Array<{ filename: string; longname: string }>;
    expect(listing.map((e) => e.filename).sort()).toEqual(['hello.txt', 'out', 'outdir', 'sub']);
    // The outward link is listed as a link, not followed.
    expect(listing.find((e) => e.filename === 'out')!.longname).toMatch(/^l/);
    expect(await call((cb) => sftp.writeFile('/sub/new.txt', 'x', { flag: 'wx' }, cb))).toMatchObject({ code: STATUS.FAILURE });
    await h.close();
  });

  test('pipelined requests take effect in order (sshfs sends LSTAT right after OPEN with O_CREAT)', async () => {
    const h = await harness();
    const sftp = await h.sftp();
    // Every request leaves before any reply arrives; done often enough that reordering would show.
    const rounds = Array.from({ length: 40 }, (_, i) => {
      const file = `/sub/created-${i}.txt`;
      return Promise.all([
        call<Buffer>((cb) => sftp.open(file, 'w', cb)),
        call((cb) => sftp.lstat(file, cb)),
        call((cb) => sftp.unlink(file, cb)),
        call((cb) => sftp.lstat(file, cb)),
      ]);
    });
    for (const [opened, stat, removed, after] of await Promise.all(rounds)) {
      expect(Buffer.isBuffer(opened)).toBe(true);
      expect(stat).toMatchObject({ size: 0 });
      expect(removed).toBeUndefined();
      expect(after).toMatchObject({ code: STATUS.NO_SUCH_FILE });
    }
    await h.close();
  });

  test('setstat truncates, changes mode and times', async () => {
    const h = await harness();
    const sftp = await h.sftp();
    writeFileSync(path.join(h.share, 'f.txt'), '0123456789');
    expect(await call((cb) => sftp.setstat('/f.txt', { size: 4, mode: 0o600, atime: 1_000_000, mtime: 2_000_000 }, cb))).toBeUndefined();
    const stats = statSync(path.join(h.share, 'f.txt'));
    expect([stats.size, stats.mode & 0o777, Math.floor(stats.mtimeMs / 1000), Math.floor(stats.atimeMs / 1000)]).toEqual([4, 0o600, 2_000_000, 1_000_000]);
    const handle = (await call<Buffer>((cb) => sftp.open('/f.txt', 'r+', cb))) as Buffer;
    expect(await call((cb) => sftp.fsetstat(handle, { size: 2, mode: 0o640 }, cb))).toBeUndefined();
    expect(await call((cb) => sftp.fstat(handle, cb))).toMatchObject({ size: 2, mode: 0o100640 });
    expect(await call((cb) => sftp.close(handle, cb))).toBeUndefined();
    await h.close();
  });

  test('rmdir is never recursive; rename never overwrites; symlinks stay inside', async () => {
    const h = await harness();
    const sftp = await h.sftp();
    expect(await call((cb) => sftp.rmdir('/sub', cb))).toMatchObject({ code: STATUS.FAILURE });
    expect(existsSync(path.join(h.share, 'sub', 'deep.txt'))).toBe(true);
    expect(await call((cb) => sftp.mkdir('/empty', cb))).toBeUndefined();
    expect(await call((cb) => sftp.rmdir('/empty', cb))).toBeUndefined();
    expect(await call((cb) => sftp.rename('/hello.txt', '/sub/deep.txt', cb))).toMatchObject({ code: STATUS.FAILURE });
    expect(readFileSync(path.join(h.share, 'sub', 'deep.txt'), 'utf8')).toBe('deep');
    expect(await call((cb) => sftp.rename('/hello.txt', '/sub/hello.txt', cb))).toBeUndefined();
    // ssh2's client: symlink(target, link).
    expect(await call((cb) => sftp.symlink('/sub/hello.txt', '/link', cb))).toBeUndefined();
    expect(String(await call((cb) => sftp.readFile('/link', cb)))).toBe('hello');
    expect(await call((cb) => sftp.readlink('/link', cb))).toBe('/sub/hello.txt');
    expect(await call((cb) => sftp.symlink('../secret.txt', '/bad', cb))).toMatchObject(denied);
    expect(existsSync(path.join(h.share, 'bad'))).toBe(false);
    // Removing an outward link removes the link, never its target.
    expect(await call((cb) => sftp.unlink('/out', cb))).toBeUndefined();
    expect(readFileSync(path.join(h.base, 'secret.txt'), 'utf8')).toBe('SECRET');
    await h.close();
  });

  test('every way out is refused and nothing outside changes', async () => {
    const h = await harness();
    const sftp = await h.sftp();
    const attempts: Array<[string, Promise<unknown>]> = [
      ['read ../', call((cb) => sftp.readFile('../secret.txt', cb))],
      ['read through link', call((cb) => sftp.readFile('/out', cb))],
      ['write through link', call((cb) => sftp.writeFile('/out', 'PWNED', cb))],
      ['stat through link', call((cb) => sftp.stat('/out', cb))],
      ['readlink of outward link', call((cb) => sftp.readlink('/out', cb))],
      ['readdir through link', call((cb) => sftp.readdir('/outdir', cb))],
      ['write into linked dir', call((cb) => sftp.writeFile('/outdir/new.txt', 'x', cb))],
      ['mkdir ../', call((cb) => sftp.mkdir('/../made', cb))],
      ['rename to ../', call((cb) => sftp.rename('/hello.txt', '../moved.txt', cb))],
      ['rename into linked dir', call((cb) => sftp.rename('/hello.txt', '/outdir/moved.txt', cb))],
      ['setstat through link', call((cb) => sftp.setstat('/out', { size: 0 }, cb))],
      ['realpath ..', call((cb) => sftp.realpath('..', cb))],
    ];
    for (const [what, attempt] of attempts) expect(await attempt, what).toMatchObject(denied);
    // Absolute paths name share paths: /etc/passwd is <share>/etc/passwd, which does not exist.
    expect(await call((cb) => sftp.readFile('/etc/passwd', cb))).toMatchObject({ code: STATUS.NO_SUCH_FILE });
    expect(readFileSync(path.join(h.base, 'secret.txt'), 'utf8')).toBe('SECRET');
    expect(existsSync(path.join(h.base, 'made'))).toBe(false);
    expect(existsSync(path.join(h.base, 'moved.txt'))).toBe(false);
    expect(existsSync(path.join(h.base, 'outdir', 'new.txt'))).toBe(false);
    expect(existsSync(path.join(h.share, 'hello.txt'))).toBe(true);
    await h.close();
  });
});

test('read-only shares refuse every write and still read', async () => {
  const h = await harness(true);
  const sftp = await h.sftp();
  expect(String(await call((cb) => sftp.readFile('/hello.txt', cb)))).toBe('hello');
  const attempts: Array<[string, Promise<unknown>]> = [
    ['open for write', call((cb) => sftp.open('/hello.txt', 'r+', cb))],
    ['create', call((cb) => sftp.writeFile('/new.txt', 'x', cb))],
    ['mkdir', call((cb) => sftp.mkdir('/d', cb))],
    ['rmdir', call((cb) => sftp.rmdir('/sub', cb))],
    ['remove', call((cb) => sftp.unlink('/hello.txt', cb))],
    ['rename', call((cb) => sftp.rename('/hello.txt', '/h2.txt', cb))],
    ['setstat', call((cb) => sftp.setstat('/hello.txt', { mode: 0o600 }, cb))],
    ['symlink', call((cb) => sftp.symlink('hello.txt', '/l', cb))],
  ];
  for (const [what, attempt] of attempts) expect(await attempt, what).toMatchObject(denied);
  const handle = (await call<Buffer>((cb) => sftp.open('/hello.txt', 'r', cb))) as Buffer;
  expect(await call((cb) => sftp.fsetstat(handle, { size: 0 }, cb))).toMatchObject(denied);
  expect(readFileSync(path.join(h.share, 'hello.txt'), 'utf8')).toBe('hello');
  expect(existsSync(path.join(h.share, 'new.txt'))).toBe(false);
  await h.close();
});

test('pause closes open connections and refuses new ones until resume', async () => {
  const h = await harness();
  const client = await h.connect();
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  h.server.pause();
  await closed;
  await expect(h.connect()).rejects.toThrow();
  h.server.resume();
  const sftp = await h.sftp();
  expect(String(await call((cb) => sftp.readFile('/hello.txt', cb)))).toBe('hello');
  await h.close();
});
