/** The transfer guard and the path rules, with in-process doubles: no device, no network. */
import { expect, test } from '@playwright/test';

import { defineLab } from '../../src/config/defineLab.js';
import { guarded, type TransferGuard, type TransferSpec } from '../../src/transfer/guard.js';
import { modeFromLs } from '../../src/transfer/nc.js';
import { devicePaths, expandHome, type FileSide, type PathKind, placeDestination, temporaryName } from '../../src/transfer/paths.js';
import { ConfigError, TransferError } from '../../src/util/errors.js';

const spec: TransferSpec = { host: 'dut', protocol: 'sftp', direction: 'put', local: '/runner/fw.bin', remote: '/device/fw.bin' };
const never = () => new Promise<never>(() => {});
const failureOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as TransferError,
  );

test.describe('TransferGuard', () => {
  test('a step with no progress for the idle timeout fails as stalled, naming host, method, paths and bytes', async () => {
    const error = await failureOf(
      guarded(spec, 100, {}, async (guard) => {
        guard.setTotal(4096);
        guard.progress(1024);
        await guard.step(never());
      }),
    );
    expect(error).toBeInstanceOf(TransferError);
    expect(error?.kind).toBe('stalled');
    expect(error?.message).toMatch(
      /^dut \(sftp\): put of \/runner\/fw\.bin to \/device\/fw\.bin failed after 1024 of 4096 bytes: nothing moved for 100 ms\. The device may have hung/,
    );
  });

  test('progress keeps a transfer alive; a hushed wait does not count against the idle timeout', async () => {
    const result = await guarded(spec, 400, {}, async (guard) => {
      for (let i = 0; i < 12; i++) {
        await guard.step(new Promise((resolve) => setTimeout(resolve, 100)));
        guard.progress(1);
      }
      const resume = guard.hush();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      resume();
      return guard.bytes;
    });
    expect(result).toBe(12);
  });

  test('the caller aborting fails the transfer as aborted with the reason; an aborted signal fails it before it starts', async () => {
    const controller = new AbortController();
    const pending = failureOf(guarded(spec, 60_000, { signal: controller.signal }, (guard) => guard.step(never())));
    controller.abort(new Error('operator pressed stop'));
    const error = await pending;
    expect(error?.kind).toBe('aborted');
    expect(error?.message).toContain('failed after 0 of 0 bytes: it was aborted (operator pressed stop).');
    let started = false;
    const early = await failureOf(
      guarded(spec, 60_000, { signal: AbortSignal.abort('no') }, async (guard) => {
        guard.check();
        started = true;
      }),
    );
    expect(early?.kind).toBe('aborted');
    expect(started).toBe(false);
  });

  test('a lost connection stops every wait at once, and cleanups run', async () => {
    let lose: ((error: Error) => void) | undefined;
    let unsubscribed = false;
    const cleaned: string[] = [];
    const error = await failureOf(
      guarded(spec, 60_000, {}, async (guard) => {
        guard.watch((listener) => {
          lose = listener;
          return () => (unsubscribed = true);
        });
        guard.onStop((reason) => cleaned.push(reason.kind));
        setTimeout(() => lose?.(new Error('Keepalive timeout')), 10);
        await Promise.all([guard.step(never()), guard.step(never())]);
      }),
    );
    expect(error?.kind).toBe('lost');
    expect(error?.message).toContain('the connection was lost (Keepalive timeout)');
    expect(cleaned).toEqual(['lost']);
    expect(unsubscribed).toBe(true);
  });

  test('partial files are removed on failure; those that cannot be are named; a lost connection leaves device files alone', async () => {
    const removed: string[] = [];
    const clean = await failureOf(
      guarded(spec, 60_000, {}, async (guard) => {
        guard.partials('device', async (paths) => void removed.push(...paths)).paths.add('/device/.fw.bin.lw-1.part');
        throw new Error('boom');
      }),
    );
    expect(removed).toEqual(['/device/.fw.bin.lw-1.part']);
    expect(clean?.message).not.toContain('Partial files remain');

    const stuck = await failureOf(
      guarded(spec, 60_000, {}, async (guard) => {
        guard.partials('device', async () => Promise.reject(new Error('read-only'))).paths.add('/device/.fw.bin.lw-2.part');
        throw new TransferError('verification failed.', { kind: 'incomplete' });
      }),
    );
    expect(stuck?.kind).toBe('incomplete');
    expect(stuck?.message).toContain(
      'put of /runner/fw.bin to /device/fw.bin failed: verification failed. Partial files remain at /device/.fw.bin.lw-2.part (on the device): remove them.',
    );

    const deviceRemovals: string[] = [];
    const runnerRemovals: string[] = [];
    const lost = await failureOf(
      guarded(spec, 60_000, {}, async (guard) => {
        guard.partials('device', async (paths) => void deviceRemovals.push(...paths)).paths.add('/device/.fw.bin.lw-3.part');
        guard.partials('runner', async (paths) => void runnerRemovals.push(...paths)).paths.add('/runner/.x.lw-3.part');
        guard.lose(new Error('gone'));
        await guard.step(never());
      }),
    );
    expect(lost?.kind).toBe('lost');
    expect(deviceRemovals).toEqual([]);
    expect(runnerRemovals).toEqual(['/runner/.x.lw-3.part']);
    expect(lost?.message).toContain('Partial files remain at /device/.fw.bin.lw-3.part (on the device)');
  });

  test('progress reports are monotonic and the last one is the total; a throwing callback changes nothing', async () => {
    const reports: Array<[number, number]> = [];
    const result = await guarded(spec, 60_000, { onProgress: (done, total) => void reports.push([done, total]) }, async (guard) => {
      guard.setTotal(3000);
      for (let i = 0; i < 3000; i++) guard.progress(1);
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(reports.at(-1)).toEqual([3000, 3000]);
    expect(reports.map(([done]) => done)).toEqual([...reports.map(([done]) => done)].sort((a, b) => a - b));
    await expect(
      guarded(
        spec,
        60_000,
        {
          onProgress: () => {
            throw new Error('observer bug');
          },
        },
        async (guard) => {
          guard.progress(10);
          return 'still ok';
        },
      ),
    ).resolves.toBe('still ok');
  });

  test('runner file-system errors become path errors; other errors say which transfer failed', async () => {
    const missing = await failureOf(
      guarded(spec, 60_000, {}, async () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', path: '/runner/fw.bin' });
      }),
    );
    expect(missing?.kind).toBe('missing');
    expect(missing?.message).toBe(
      'dut (sftp): put of /runner/fw.bin to /device/fw.bin failed: /runner/fw.bin on the runner: no such file or directory. Check the local path, its permissions and free space.',
    );
    const other = await failureOf(
      guarded(spec, 60_000, {}, async (guard) => {
        guard.progress(5);
        throw new Error('socket hang up');
      }),
    );
    expect(other?.kind).toBe('failed');
    expect(other?.message).toBe('dut (sftp): put of /runner/fw.bin to /device/fw.bin failed after 5 of 5 bytes: socket hang up.');
  });

  test('a timeout or mode no method can honour is refused before anything runs', async () => {
    let ran = false;
    const body = async () => void (ran = true);
    for (const options of [{ timeout: 0 }, { timeout: -5 }, { timeout: Number.NaN }, { mode: 0o10000 }, { mode: 1.5 }]) {
      const error = await failureOf(guarded(spec, 60_000, options, body));
      expect(error?.kind, JSON.stringify(options)).toBe('unsupported');
      expect(error?.message).toMatch(
        /^dut \(sftp\): put of \/runner\/fw\.bin: (timeout must be a positive number of milliseconds|mode must be permission bits between 0 and 0o7777)/,
      );
    }
    expect(ran).toBe(false);
  });

  test('a stop after the body returned changes nothing: the files already have their final names', async () => {
    const controller = new AbortController();
    const result = await guarded(spec, 60_000, { signal: controller.signal }, async (guard: TransferGuard) => {
      guard.progress(1);
      controller.abort();
      return 'committed';
    });
    expect(result).toBe('committed');
  });
});

/** An in-memory device side: kinds by path, directories created recorded. */
function memorySide(kinds: Record<string, PathKind>): FileSide & { created: string[] } {
  const created: string[] = [];
  return {
    where: 'device',
    paths: devicePaths,
    created,
    kinds: async (paths) => paths.map((p) => kinds[p] ?? 'missing'),
    makeDirectories: async (dir) => void created.push(dir),
  };
}

test.describe('transfer path rules', () => {
  const context = { host: 'dut', protocol: 'nc' as const };
  const place = (side: FileSide, destination: string, directory: boolean) => placeDestination(side, destination, { directory, name: 'fw.bin' }, context);

  test('a file lands at the destination, or inside it when it is a directory or ends with a slash; missing parents are created', async () => {
    const side = memorySide({ '/opt': 'directory', '/opt/fw': 'directory', '/opt/old.bin': 'file' });
    expect(await place(side, '/opt/new.bin', false)).toBe('/opt/new.bin');
    expect(await place(side, '/opt/old.bin', false)).toBe('/opt/old.bin');
    expect(await place(side, '/opt/fw', false)).toBe('/opt/fw/fw.bin');
    expect(side.created).toEqual([]);
    expect(await place(side, '/opt/a/b/c.bin', false)).toBe('/opt/a/b/c.bin');
    expect(await place(side, '/opt/made/', false)).toBe('/opt/made/fw.bin');
    expect(side.created).toEqual(['/opt/a/b', '/opt/made/']);
  });

  test('a directory lands in the destination itself, created when missing, merged when it exists', async () => {
    const side = memorySide({ '/opt/tree': 'directory' });
    expect(await place(side, '/opt/tree', true)).toBe('/opt/tree');
    expect(await place(side, '/opt/new', true)).toBe('/opt/new');
    expect(side.created).toEqual(['/opt/new']);
  });

  test('what cannot hold the result is refused with a typed error naming the path', async () => {
    const side = memorySide({ '/opt/file': 'file', '/opt/dir': 'directory', '/opt/dir/fw.bin': 'directory', '/dev/null': 'other' });
    const kind = (p: Promise<unknown>) =>
      p.then(
        () => 'placed',
        (error: TransferError) => `${error.kind}: ${error.detail}`,
      );
    expect(await kind(place(side, '/opt/file', true))).toBe(
      'not-a-directory: cannot write the directory /opt/file on the device: a path component is not a directory.',
    );
    expect(await kind(place(side, '/opt/file/x.bin', false))).toBe(
      'not-a-directory: cannot write /opt/file/x.bin on the device: a path component is not a directory.',
    );
    expect(await kind(place(side, '/opt/dir', false))).toBe('is-a-directory: cannot replace /opt/dir/fw.bin on the device: it is a directory.');
    expect(await kind(place(side, '/dev/null', false))).toBe(
      'unsupported: cannot replace the special file /dev/null on the device: it is neither a regular file nor a directory.',
    );
  });

  test('~ is the login directory; temporary names are hidden, beside the final name and unique', () => {
    expect(expandHome('~', '/home/lab')).toBe('/home/lab');
    expect(expandHome('~/fw/x.bin', '/home/lab')).toBe('/home/lab/fw/x.bin');
    expect(expandHome('~other/x', '/home/lab')).toBe('~other/x');
    expect(expandHome('rel/x', '/home/lab')).toBe('rel/x');
    const a = temporaryName('/opt/fw.bin', devicePaths);
    expect(a).toMatch(/^\/opt\/\.fw\.bin\.lw-[0-9a-f]{8}\.part$/);
    expect(temporaryName('/opt/fw.bin', devicePaths)).not.toBe(a);
  });

  test('modes are read from ls -l output, special bits included', () => {
    expect(modeFromLs('-rw-r--r--')).toBe(0o644);
    expect(modeFromLs('-rwxr-x---')).toBe(0o750);
    expect(modeFromLs('-rwsr-sr-t')).toBe(0o7755);
    expect(modeFromLs('-rwSr--r-T')).toBe(0o5644);
    expect(modeFromLs('total')).toBeUndefined();
  });
});

test('ftp.user naming a user the host does not have is a config error from defineLab', () => {
  const define = () =>
    defineLab({ hosts: { dut: { address: '10.0.0.5', users: { root: { password: 'x' }, ftpuser: { password: 'y' } }, ftp: { user: 'ftpusr' } } } });
  expect(define).toThrow(ConfigError);
  expect(define).toThrow(/host "dut" → ftp\.user: "ftpusr" is not one of its users \(root, ftpuser\); did you mean "ftpuser"\?/);
});
