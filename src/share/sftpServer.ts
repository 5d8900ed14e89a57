/**
 * An SFTP v3 server session confined to a shared folder: the operations OpenSSH's `sftp`
 * and `sshfs` use (OPEN, CLOSE, READ, WRITE, FSTAT, LSTAT, STAT, SETSTAT, FSETSTAT,
 * OPENDIR, READDIR, REMOVE, MKDIR, RMDIR, REALPATH, RENAME, READLINK, SYMLINK) on top of
 * ssh2's server-mode SFTP parser. Every path goes through {@link ShareRoot}; read-only
 * shares refuse every write; RMDIR is never recursive. Extensions are not offered (ssh2
 * answers EXTENDED with OP_UNSUPPORTED), so clients use the plain v3 operations.
 */
import { constants as fsConstants, type Dir, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import ssh2 from 'ssh2';

import { attrsOf, longname, ReadOnlyShareError, SftpStatusError, STATUS, statusOf } from './sftpReplies.js';
import { O_NOFOLLOW, OutsideShareError, type ShareRoot } from './shareRoot.js';

const OPEN_MODE = ssh2.utils.sftp.OPEN_MODE;

/** Largest READ answered in one reply (OpenSSH's sftp-server uses the same cap). */
const MAX_READ = 256 * 1024;
/** Directory entries per READDIR reply. */
const READDIR_BATCH = 128;
/** Open handles per session; more are refused rather than exhausting the runner's fds. */
const MAX_HANDLES = 512;

/** Options of a served session. */
export interface SftpServeOptions {
  /** Refuse every write: open for writing, mkdir, rmdir, remove, rename, setstat, symlink. */
  readOnly: boolean;
}

type OpenFile = { kind: 'file'; file: FileHandle; virtual: string };
type OpenDir = { kind: 'dir'; dir: Dir; real: string; virtual: string; done: boolean };

/** Attributes a client may send: only the fields whose flag was set are present. */
type RequestAttrs = Partial<Attributes> | undefined;

/** One SFTP session; `close()` releases every file and directory it holds open. */
export interface SftpSession {
  close(): Promise<void>;
}

function toFsOpenFlags(pflags: number): number {
  const read = (pflags & OPEN_MODE.READ) !== 0;
  const write = (pflags & OPEN_MODE.WRITE) !== 0;
  let flags = read && write ? fsConstants.O_RDWR : write ? fsConstants.O_WRONLY : fsConstants.O_RDONLY;
  if (pflags & OPEN_MODE.APPEND) flags |= fsConstants.O_APPEND;
  if (pflags & OPEN_MODE.CREAT) flags |= fsConstants.O_CREAT;
  if (pflags & OPEN_MODE.TRUNC) flags |= fsConstants.O_TRUNC;
  if (pflags & OPEN_MODE.EXCL) flags |= fsConstants.O_EXCL;
  // O_NOFOLLOW: resolution already followed links, a link here means a race; O_NONBLOCK:
  // opening a FIFO in the share must not block a thread-pool thread forever.
  return flags | O_NOFOLLOW | (fsConstants.O_NONBLOCK ?? 0);
}

const WRITE_FLAGS = OPEN_MODE.WRITE | OPEN_MODE.APPEND | OPEN_MODE.CREAT | OPEN_MODE.TRUNC;

/** Applies SETSTAT/FSETSTAT attributes: size, owner, mode, then times (so truncating does not bump them). */
async function applyAttrs(
  attrs: RequestAttrs,
  target: {
    truncate(size: number): Promise<void>;
    chown(uid: number, gid: number): Promise<void>;
    chmod(mode: number): Promise<void>;
    utimes(atime: number, mtime: number): Promise<void>;
  },
): Promise<void> {
  if (!attrs) return;
  if (attrs.size !== undefined) await target.truncate(attrs.size);
  if (attrs.uid !== undefined && attrs.gid !== undefined) await target.chown(attrs.uid, attrs.gid);
  if (attrs.mode !== undefined) await target.chmod(attrs.mode & 0o7777);
  if (attrs.atime !== undefined && attrs.mtime !== undefined) await target.utimes(attrs.atime, attrs.mtime);
}

/**
 * Serves SFTP requests arriving on `sftp` (an ssh2 SFTP stream in server mode) from the
 * folder behind `root`.
 */
export function serveSftp(sftp: SFTPWrapper, root: ShareRoot, options: SftpServeOptions): SftpSession {
  const handles = new Map<string, OpenFile | OpenDir>();
  let nextHandle = 1;
  let closed = false;

  // Request order: clients pipeline requests and rely on them taking effect in order
  // (sshfs sends OPEN with O_CREAT and, without waiting, LSTAT of the new file), as
  // OpenSSH's sequential sftp-server guarantees. Requests that change nothing ('look')
  // run concurrently with each other, so pipelined READs stay parallel; a request that
  // changes something ('change') waits for everything before it, and everything after
  // waits for it.
  let barrier: Promise<void> = Promise.resolve();
  const looking = new Set<Promise<void>>();
  /** Runs a request in order; whatever it throws becomes a STATUS reply. */
  const answer = (reqId: number, work: () => Promise<void>, kind: 'look' | 'change' = 'change') => {
    const run = () =>
      work().catch((error: unknown) => {
        const { code, message } = statusOf(error);
        sftp.status(reqId, code, message);
      });
    if (kind === 'look') {
      const done = barrier.then(run);
      looking.add(done);
      void done.then(() => looking.delete(done));
      return;
    }
    const before = Promise.all([barrier, ...looking]);
    looking.clear();
    barrier = before.then(run);
  };
  const writable = () => {
    if (options.readOnly) throw new ReadOnlyShareError();
  };
  const addHandle = (entry: OpenFile | OpenDir): Buffer => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(nextHandle++ >>> 0);
    handles.set(id.toString('hex'), entry);
    return id;
  };
  const lookup = (handle: Buffer): OpenFile | OpenDir => {
    const entry = handles.get(handle.toString('hex'));
    if (!entry) throw new SftpStatusError(STATUS.FAILURE, 'invalid handle');
    return entry;
  };
  const fileOf = (handle: Buffer): OpenFile => {
    const entry = lookup(handle);
    if (entry.kind !== 'file') throw new SftpStatusError(STATUS.FAILURE, 'not a file handle');
    return entry;
  };
  const roomForHandle = async (release: () => Promise<void>) => {
    if (handles.size < MAX_HANDLES && !closed) return;
    await release();
    throw new SftpStatusError(STATUS.FAILURE, closed ? 'the session is closing' : `too many open handles (${MAX_HANDLES})`);
  };
  const ok = (reqId: number) => sftp.status(reqId, STATUS.OK);

  const setstatPath = (clientPath: string, attrs: RequestAttrs) =>
    root.shared(async () => {
      const real = await root.resolve(clientPath, { follow: true });
      await applyAttrs(attrs, {
        truncate: (size) => fs.truncate(real, size),
        chown: (uid, gid) => fs.chown(real, uid, gid),
        chmod: (mode) => fs.chmod(real, mode),
        utimes: (atime, mtime) => fs.utimes(real, atime, mtime),
      });
    });

  sftp.on('OPEN', (reqId: number, filename: string, pflags: number, attrs: RequestAttrs) =>
    answer(reqId, async () => {
      if (pflags & WRITE_FLAGS) writable();
      const mode = attrs?.mode !== undefined ? attrs.mode & 0o7777 : 0o666;
      const file = await root.shared(async () => fs.open(await root.resolve(filename, { follow: true }), toFsOpenFlags(pflags), mode));
      await roomForHandle(() => file.close());
      sftp.handle(reqId, addHandle({ kind: 'file', file, virtual: filename }));
    }),
  );

  sftp.on('READ', (reqId: number, handle: Buffer, offset: number, length: number) =>
    answer(
      reqId,
      async () => {
        const { file } = fileOf(handle);
        const size = Math.min(length, MAX_READ);
        const buffer = Buffer.allocUnsafe(size);
        const { bytesRead } = await file.read(buffer, 0, size, offset);
        if (bytesRead === 0 && size > 0) return sftp.status(reqId, STATUS.EOF);
        sftp.data(reqId, bytesRead === size ? buffer : buffer.subarray(0, bytesRead));
      },
      'look',
    ),
  );

  sftp.on('WRITE', (reqId: number, handle: Buffer, offset: number, data: Buffer) =>
    answer(reqId, async () => {
      writable();
      const { file } = fileOf(handle);
      for (let done = 0; done < data.length;) {
        const { bytesWritten } = await file.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
      ok(reqId);
    }),
  );

  sftp.on('FSTAT', (reqId: number, handle: Buffer) =>
    answer(
      reqId,
      async () => {
        const entry = lookup(handle);
        const stats =
          entry.kind === 'file' ? await entry.file.stat() : await root.shared(async () => fs.stat(await root.resolve(entry.virtual, { follow: true })));
        sftp.attrs(reqId, attrsOf(stats));
      },
      'look',
    ),
  );

  sftp.on('FSETSTAT', (reqId: number, handle: Buffer, attrs: RequestAttrs) =>
    answer(reqId, async () => {
      writable();
      const entry = lookup(handle);
      if (entry.kind === 'dir') await setstatPath(entry.virtual, attrs);
      else {
        const { file } = entry;
        await applyAttrs(attrs, {
          truncate: (size) => file.truncate(size),
          chown: (uid, gid) => file.chown(uid, gid),
          chmod: (mode) => file.chmod(mode),
          utimes: (atime, mtime) => file.utimes(atime, mtime),
        });
      }
      ok(reqId);
    }),
  );

  sftp.on('SETSTAT', (reqId: number, clientPath: string, attrs: RequestAttrs) =>
    answer(reqId, async () => {
      writable();
      await setstatPath(clientPath, attrs);
      ok(reqId);
    }),
  );

  sftp.on('CLOSE', (reqId: number, handle: Buffer) =>
    answer(reqId, async () => {
      const entry = lookup(handle);
      handles.delete(handle.toString('hex'));
      // FileHandle.close waits for reads and writes still in flight on it.
      if (entry.kind === 'file') await entry.file.close();
      else await entry.dir.close().catch(() => {});
      ok(reqId);
    }),
  );

  sftp.on('OPENDIR', (reqId: number, clientPath: string) =>
    answer(reqId, async () => {
      const { dir, real } = await root.shared(async () => {
        const real = await root.resolve(clientPath, { follow: true });
        return { dir: await fs.opendir(real, { bufferSize: READDIR_BATCH }), real };
      });
      await roomForHandle(() => dir.close());
      sftp.handle(reqId, addHandle({ kind: 'dir', dir, real, virtual: clientPath, done: false }));
    }),
  );

  sftp.on('READDIR', (reqId: number, handle: Buffer) =>
    answer(reqId, async () => {
      const entry = lookup(handle);
      if (entry.kind !== 'dir') throw new SftpStatusError(STATUS.FAILURE, 'not a directory handle');
      if (entry.done) return sftp.status(reqId, STATUS.EOF);
      const names: FileEntry[] = await root.shared(async () => {
        // Entries are lstat'ed by path: make sure the directory is still where it was checked.
        const current = await fs.realpath(entry.real);
        if (!root.contains(current)) throw new OutsideShareError('the directory');
        const batch: FileEntry[] = [];
        while (batch.length < READDIR_BATCH) {
          const dirent = await entry.dir.read();
          if (!dirent) {
            entry.done = true;
            break;
          }
          // lstat: a symlink is listed as a symlink, never followed.
          const stats = await fs.lstat(path.join(current, dirent.name)).catch(() => undefined);
          if (stats) batch.push({ filename: dirent.name, longname: longname(dirent.name, stats), attrs: attrsOf(stats) });
        }
        return batch;
      });
      if (names.length === 0) return sftp.status(reqId, STATUS.EOF);
      sftp.name(reqId, names);
    }),
  );

  sftp.on('LSTAT', (reqId: number, clientPath: string) =>
    answer(
      reqId,
      async () => {
        const stats = await root.shared(async () => fs.lstat(await root.resolve(clientPath, { follow: false })));
        sftp.attrs(reqId, attrsOf(stats));
      },
      'look',
    ),
  );

  sftp.on('STAT', (reqId: number, clientPath: string) =>
    answer(
      reqId,
      async () => {
        const stats = await root.shared(async () => fs.stat(await root.resolve(clientPath, { follow: true })));
        sftp.attrs(reqId, attrsOf(stats));
      },
      'look',
    ),
  );

  sftp.on('REMOVE', (reqId: number, clientPath: string) =>
    answer(reqId, async () => {
      writable();
      // unlink removes a symlink itself, never what it points to.
      await root.shared(async () => fs.unlink(await root.resolve(clientPath, { follow: false })));
      ok(reqId);
    }),
  );

  sftp.on('MKDIR', (reqId: number, clientPath: string, attrs: RequestAttrs) =>
    answer(reqId, async () => {
      writable();
      const mode = attrs?.mode !== undefined ? attrs.mode & 0o7777 : 0o777;
      await root.shared(async () => fs.mkdir(await root.resolve(clientPath, { follow: false }), { mode }));
      ok(reqId);
    }),
  );

  sftp.on('RMDIR', (reqId: number, clientPath: string) =>
    answer(reqId, async () => {
      writable();
      await root.shared(async () => {
        const real = await root.resolve(clientPath, { follow: false });
        if (real === root.real) throw new SftpStatusError(STATUS.PERMISSION_DENIED, 'the share root cannot be removed');
        await fs.rmdir(real); // rmdir(2): empty directories only, never recursive
      });
      ok(reqId);
    }),
  );

  sftp.on('REALPATH', (reqId: number, clientPath: string) =>
    answer(
      reqId,
      async () => {
        const virtual = await root.shared(() => root.canonical(clientPath));
        sftp.name(reqId, [{ filename: virtual, longname: virtual } as FileEntry]);
      },
      'look',
    ),
  );

  sftp.on('RENAME', (reqId: number, oldPath: string, newPath: string) =>
    answer(reqId, async () => {
      writable();
      await root.exclusive(async () => {
        const from = await root.resolve(oldPath, { follow: false });
        const to = await root.resolve(newPath, { follow: false });
        if (from === root.real) throw new SftpStatusError(STATUS.PERMISSION_DENIED, 'the share root cannot be renamed');
        // SFTP v3: renaming onto an existing name is an error (no silent overwrite).
        const exists = await fs.lstat(to).then(
          () => true,
          () => false,
        );
        if (exists) throw new SftpStatusError(STATUS.FAILURE, 'File exists');
        await fs.rename(from, to);
      });
      ok(reqId);
    }),
  );

  sftp.on('READLINK', (reqId: number, clientPath: string) =>
    answer(
      reqId,
      async () => {
        const text = await root.shared(() => root.readlink(clientPath));
        sftp.name(reqId, [{ filename: text, longname: text } as FileEntry]);
      },
      'look',
    ),
  );

  // ssh2 passes (linkPath, targetPath) in protocol order, undoing OpenSSH's historical swap.
  sftp.on('SYMLINK', (reqId: number, linkPath: string, targetPath: string) =>
    answer(reqId, async () => {
      writable();
      await root.exclusive(async () => {
        const { link, text } = await root.linkTarget(linkPath, targetPath);
        await fs.symlink(text, link);
      });
      ok(reqId);
    }),
  );

  const close = async () => {
    if (closed) return;
    closed = true;
    const open = [...handles.values()];
    handles.clear();
    await Promise.allSettled(open.map((entry) => (entry.kind === 'file' ? entry.file.close() : entry.dir.close())));
  };
  // The client's EOF ends the session: like sftp-server exiting under sshd, close the
  // channel too, or OpenSSH's ssh waits for it (and sftp ends up killing ssh, exit 1).
  sftp.once('end', () => {
    void close();
    sftp.end();
  });
  sftp.once('close', () => void close());
  return { close };
}
