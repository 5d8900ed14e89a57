/**
 * The embedded lease store: nothing to set up, shared by every process of one machine. The
 * state is one JSON file in a lock directory (default `<tmp>/labwright-leases`), changed only
 * under a lock file (proper-lockfile: an atomic mkdir, broken when its owner stops refreshing
 * it for 2 s) and replaced atomically (write a new file, rename it over the old one), so a
 * reader never sees half a state. Waiters of other processes are woken through inotify
 * (`fs.watch` on the directory); a periodic check-in bounds a missed event. Expiry uses this
 * machine's clock, which every process here shares.
 */
import { randomBytes } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { chmod, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { Mutex } from 'async-mutex';
import lockfile from 'proper-lockfile';

import { LeaseError, messageOf } from '../util/errors.js';
import { sleep } from '../util/time.js';
import { LeaseBook } from './book.js';
import { BookStore } from './store.js';
import type { LeaseState } from './types.js';

const FORMAT = 'labwright-leases';
/** Version of the state file's layout; a newer one is refused rather than misread. */
export const EMBEDDED_FORMAT_VERSION = 1;
const STATE_FILE = 'state.json';

interface StateFile extends LeaseState {
  format: typeof FORMAT;
  version: number;
  /** Grows with every write: a writer whose lock was broken (it stalled for seconds) sees that someone else wrote. */
  generation: number;
}

/** The state and the generation it was read at. */
interface Loaded {
  state: LeaseState;
  generation: number;
}

export interface EmbeddedStoreOptions {
  /** The lock directory (created if missing). */
  directory: string;
  /** Bound (ms) on getting the lock. */
  lockTimeout: number;
}

export class EmbeddedStore extends BookStore {
  readonly description: string;
  private readonly file: string;
  /** Operations of this process queue here instead of spinning on the lock file. */
  private readonly local = new Mutex();
  private watcher: FSWatcher | undefined;
  private subscribers = 0;
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private closed = false;
  private ready: Promise<void> | undefined;

  constructor(private readonly options: EmbeddedStoreOptions) {
    super();
    this.description = `embedded store ${options.directory}`;
    this.file = path.join(options.directory, STATE_FILE);
  }

  private fail(kind: 'unreachable' | 'store', detail: string, hint: string, cause?: unknown): LeaseError {
    return new LeaseError(kind, `${this.description}: ${detail.replace(/\.?$/, '.')}`, { hint, cause });
  }

  /** Makes the directory once per store (again if it vanishes: see lock()). */
  private ensureDirectory(): Promise<void> {
    this.ready ??= this.makeDirectory();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  private async makeDirectory(): Promise<void> {
    const { directory } = this.options;
    try {
      await mkdir(directory, { recursive: true });
      const info = await lstat(directory);
      if (!info.isDirectory()) throw this.fail('store', `${directory} is not a directory`, 'Remove it or point leases.store elsewhere.');
      // Shared by every user's processes on this machine (no sticky bit: each replaces the state file).
      if (info.uid === process.getuid?.()) await chmod(directory, 0o777).catch(() => {});
    } catch (error) {
      if (error instanceof LeaseError) throw error;
      throw this.fail(
        'unreachable',
        `cannot create or use the directory: ${messageOf(error)}`,
        'Check its permissions, or point leases.store at another directory.',
        error,
      );
    }
  }

  private async load(): Promise<Loaded> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: { seq: 0, holders: [], waiters: [] }, generation: 0 };
      throw this.fail('unreachable', `cannot read ${this.file}: ${messageOf(error)}`, 'Check the permissions of the lock directory.', error);
    }
    let parsed: Partial<StateFile>;
    try {
      parsed = JSON.parse(text) as Partial<StateFile>;
    } catch (error) {
      throw this.fail(
        'store',
        `${this.file} is not valid JSON (${messageOf(error)})`,
        'Remove it when no test runs: every lease of this machine is dropped with it.',
        error,
      );
    }
    if (parsed.format !== FORMAT || typeof parsed.version !== 'number') {
      throw this.fail('store', `${this.file} is not a labwright lease file`, 'Point leases.store at a directory of its own.');
    }
    if (parsed.version > EMBEDDED_FORMAT_VERSION) {
      throw this.fail(
        'store',
        `${this.file} has format version ${parsed.version}, written by a newer labwright (this one knows ${EMBEDDED_FORMAT_VERSION})`,
        'Use the same labwright version on every runner of this machine.',
      );
    }
    return { state: { seq: parsed.seq ?? 0, holders: parsed.holders ?? [], waiters: parsed.waiters ?? [] }, generation: parsed.generation ?? 0 };
  }

  /** Writes the state, unless someone else wrote since `loaded` (then false: the operation is redone). */
  private async save(state: LeaseState, loaded: number): Promise<boolean> {
    if ((await this.load()).generation !== loaded) return false;
    const content: StateFile = { format: FORMAT, version: EMBEDDED_FORMAT_VERSION, generation: loaded + 1, ...state };
    const temporary = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      // 'wx': a file planted under this name is never followed or overwritten.
      await writeFile(temporary, JSON.stringify(content), { flag: 'wx', mode: 0o666 });
      await chmod(temporary, 0o666).catch(() => {});
      await rename(temporary, this.file);
      return true;
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => {});
      throw this.fail('unreachable', `cannot write ${this.file}: ${messageOf(error)}`, 'Check free space and the permissions of the lock directory.', error);
    }
  }

  /** Takes the lock file within the bound; a lock whose owner died is broken after 2 s. */
  private async lock(): Promise<() => Promise<void>> {
    const deadline = Date.now() + this.options.lockTimeout;
    for (let attempt = 0; ; attempt++) {
      try {
        return await lockfile.lock(this.file, {
          realpath: false,
          stale: 2_000,
          retries: 0,
          // A lock held for seconds means this process stalled inside a few-millisecond section.
          onCompromised: () => {},
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && attempt === 0) {
          // The directory was removed since this store made it: make it again.
          this.ready = undefined;
          await this.ensureDirectory();
          continue;
        }
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') {
          throw this.fail('unreachable', `cannot lock ${this.file}: ${messageOf(error)}`, 'Check the permissions of the lock directory.', error);
        }
        if (Date.now() >= deadline) {
          throw this.fail(
            'unreachable',
            `${this.file}.lock stayed locked for ${this.options.lockTimeout} ms`,
            'Another process holds the store lock far longer than an update takes: look for a stalled labwright process on this machine.',
          );
        }
        await sleep(Math.min(2 + attempt * 2, 25) * (0.5 + Math.random()));
      }
    }
  }

  protected async transact<T>(operation: (book: LeaseBook) => T): Promise<T> {
    if (this.closed) throw this.fail('store', 'the store was closed', 'Open the lab again.');
    return this.local.runExclusive(async () => {
      await this.ensureDirectory();
      for (let attempt = 1; ; attempt++) {
        const unlock = await this.lock();
        try {
          const loaded = await this.load();
          const book = new LeaseBook(loaded.state, Date.now());
          const result = operation(book);
          if (!book.changed || (await this.save(book.state(), loaded.generation))) return result;
          if (attempt === 3) {
            throw this.fail(
              'unreachable',
              `${this.file} kept changing under this process's lock`,
              'A process on this machine stalls for seconds while it holds the store lock: look for one.',
            );
          }
        } finally {
          await unlock().catch(() => {});
        }
      }
    });
  }

  protected async read(): Promise<LeaseBook> {
    await this.ensureDirectory();
    return new LeaseBook((await this.load()).state, Date.now());
  }

  override onGrant(listener: (requestIds: readonly number[] | undefined) => void): () => void {
    const unsubscribe = super.onGrant(listener);
    this.subscribers++;
    this.startWatching();
    return () => {
      unsubscribe();
      if (--this.subscribers === 0) this.stopWatching();
    };
  }

  /** inotify on the directory: every replaced state file wakes the waiters it granted. */
  private startWatching(): void {
    if (this.watcher || this.closed) return;
    try {
      this.watcher = watch(this.options.directory, { persistent: false }, (_event, name) => {
        if (name === null || name === STATE_FILE) this.readGrants();
      });
      this.watcher.on('error', () => this.stopWatching());
    } catch {
      // No watcher (inotify limits): waiters still check in periodically, which bounds the delay.
      this.watcher = undefined;
    }
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Reads the state without the lock (renames are atomic) and wakes the waiters whose requests hold devices. */
  private readGrants(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = (async () => {
      do {
        this.readAgain = false;
        try {
          const { state } = await this.load();
          this.wake([...new Set(state.holders.map((holder) => holder.requestId))]);
        } catch {
          this.wake(undefined);
        }
      } while (this.readAgain);
    })().finally(() => (this.reading = undefined));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching();
    await this.reading;
  }
}
