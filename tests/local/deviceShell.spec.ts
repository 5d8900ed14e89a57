/**
 * The device-side shell scripts of transfers (path kinds, mkdir -p with reasons, sizes and
 * sha256, verify-then-rename), run by the runner's own /bin/sh as if it were a device.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { commitDeviceFiles, deviceDigests, deviceShellSide, deviceTreeDigests, explainDevicePath } from '../../src/transfer/deviceShell.js';
import type { RemoteRunner } from '../../src/transfer/types.js';
import type { TransferError } from '../../src/util/errors.js';

/** Commands run by /bin/sh on the runner, the way SSH exec runs them on a device. */
const shell: RemoteRunner = {
  run: async (command) => {
    const result = spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8' });
    return { exitCode: result.status, stdout: result.stdout, stderr: result.stderr };
  },
};
const context = { host: 'dut', protocol: 'nc' as const };
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function scratch(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-devsh-'));
  writeFileSync(path.join(dir, 'file'), 'hello\n');
  mkdirSync(path.join(dir, 'dir'));
  return dir;
}

test('kinds of paths, directories created with their parents, and why a path cannot be used', async () => {
  const dir = scratch();
  const side = deviceShellSide(shell, context);
  expect(await side.kinds([`${dir}/file`, `${dir}/dir`, `${dir}/nothing`, '/dev/null', `${dir}/it's "quoted"`])).toEqual([
    'file',
    'directory',
    'missing',
    'other',
    'missing',
  ]);
  await side.makeDirectories(`${dir}/a/b/c`);
  expect(statSync(`${dir}/a/b/c`).isDirectory()).toBe(true);
  const blocked = await side.makeDirectories(`${dir}/file/sub`).then(
    () => undefined,
    (e: TransferError) => e,
  );
  expect(blocked?.kind).toBe('not-a-directory');
  expect(blocked?.message).toBe(
    `dut (nc): cannot create directory ${dir}/file/sub on the device: a path component is not a directory. A component of the path is a file; pick another path.`,
  );
  expect(await explainDevicePath(shell, `${dir}/no/such/file`, 'r')).toBe('missing');
  expect(await explainDevicePath(shell, `${dir}/file/x`, 'r')).toBe('not-a-directory');
  expect(await explainDevicePath(shell, `${dir}/file`, 'r')).toBe('denied');
});

test('sizes and sha256 digests of files and trees, names with spaces and quotes included', async () => {
  const dir = scratch();
  writeFileSync(path.join(dir, 'dir', "odd name 'q'"), 'odd\n');
  expect(await deviceDigests(shell, [`${dir}/file`, `${dir}/missing`], 'size', 0, context)).toEqual(['6', undefined]);
  expect(await deviceDigests(shell, [`${dir}/file`], 'sha256', 6, context)).toEqual([sha256('hello\n')]);
  const tree = await deviceTreeDigests(shell, dir, 'sha256', 0, context);
  expect(Object.fromEntries(tree)).toEqual({ file: sha256('hello\n'), "dir/odd name 'q'": sha256('odd\n') });
});

test('uploaded files take their final names and modes only when every one verifies', async () => {
  const dir = scratch();
  writeFileSync(path.join(dir, '.a.part'), 'aaaa');
  writeFileSync(path.join(dir, '.b.part'), 'bb');
  const commits = [
    { temp: `${dir}/.a.part`, final: `${dir}/new/a`, mode: 0o640, expected: '4' },
    { temp: `${dir}/.b.part`, final: `${dir}/new/b`, mode: 0o755, expected: '3' },
  ];
  const mismatch = await commitDeviceFiles(shell, commits, { verify: 'size', bytes: 7, directories: [`${dir}/new`], what: 'upload of x' }, context).then(
    () => undefined,
    (e: TransferError) => e,
  );
  expect(mismatch?.kind).toBe('incomplete');
  expect(mismatch?.message).toContain(`upload of x: ${dir}/new/b is incomplete: 2 bytes arrived of 3; it was not given its name.`);
  expect([existsSync(`${dir}/new/a`), existsSync(`${dir}/new/b`), existsSync(`${dir}/.a.part`)]).toEqual([false, false, true]);

  commits[1]!.expected = '2';
  await commitDeviceFiles(shell, commits, { verify: 'size', bytes: 6, directories: [`${dir}/new`], what: 'upload of x' }, context);
  expect(readFileSync(`${dir}/new/a`, 'utf8')).toBe('aaaa');
  expect([statSync(`${dir}/new/a`).mode & 0o777, statSync(`${dir}/new/b`).mode & 0o777]).toEqual([0o640, 0o755]);
  expect(existsSync(`${dir}/.a.part`)).toBe(false);

  writeFileSync(path.join(dir, '.c.part'), 'not what was sent');
  const corrupted = await commitDeviceFiles(
    shell,
    [{ temp: `${dir}/.c.part`, final: `${dir}/c`, mode: 0o644, expected: sha256('what was sent') }],
    { verify: 'sha256', bytes: 17, what: 'upload of c' },
    context,
  ).then(
    () => undefined,
    (e: TransferError) => e,
  );
  expect(corrupted?.kind).toBe('corrupted');
  expect(existsSync(`${dir}/c`)).toBe(false);

  writeFileSync(path.join(dir, '.d.part'), 'd');
  const onDirectory = await commitDeviceFiles(
    shell,
    [{ temp: `${dir}/.d.part`, final: `${dir}/dir`, mode: 0o644, expected: '1' }],
    { verify: 'none', bytes: 1, what: 'upload of d' },
    context,
  ).then(
    () => undefined,
    (e: TransferError) => e,
  );
  expect(onDirectory?.kind).toBe('is-a-directory');
  expect(statSync(`${dir}/dir`).isDirectory()).toBe(true);
});
