/** Path confinement of the reverse SFTP share: lexical rules, symlink hops, link targets. */
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { BadPathError, normalizeVirtual, OutsideShareError, ShareRoot } from '../../src/share/shareRoot.js';

/**
 * A folder layout with links pointing everywhere:
 *   base/secret.txt, base/outdir/inner.txt, base/share2/ (a sibling whose name extends "share")
 *   base/share/hello.txt, sub/deep.txt
 *   links: in -> hello.txt, indir -> sub, out -> ../secret.txt (relative), outabs -> base/secret.txt,
 *   outdir -> base/outdir, dangling-in -> sub/new.txt, dangling-out -> base/created.txt,
 *   up -> .., self -> ., chain -> in, chain-out -> out, loop1 <-> loop2, sibling -> ../share2
 */
function layout() {
  const base = mkdtempSync(path.join(os.tmpdir(), 'lw-share-root-'));
  const share = path.join(base, 'share');
  mkdirSync(path.join(share, 'sub'), { recursive: true });
  mkdirSync(path.join(base, 'outdir'));
  mkdirSync(path.join(base, 'share2'));
  writeFileSync(path.join(base, 'secret.txt'), 'SECRET');
  writeFileSync(path.join(base, 'outdir', 'inner.txt'), 'OUTSIDE');
  writeFileSync(path.join(share, 'hello.txt'), 'hello');
  writeFileSync(path.join(share, 'sub', 'deep.txt'), 'deep');
  const link = (name: string, target: string) => symlinkSync(target, path.join(share, name));
  link('in', 'hello.txt');
  link('indir', 'sub');
  link('out', '../secret.txt');
  link('outabs', path.join(base, 'secret.txt'));
  link('outdir', path.join(base, 'outdir'));
  link('dangling-in', 'sub/new.txt');
  link('dangling-out', path.join(base, 'created.txt'));
  link('up', '..');
  link('self', '.');
  link('chain', 'in');
  link('chain-out', 'out');
  link('loop1', 'loop2');
  link('loop2', 'loop1');
  link('sibling', '../share2');
  return { base, share, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

test.describe('lexical normalisation', () => {
  test('paths become absolute in the share namespace; dots and empty segments vanish', () => {
    expect(normalizeVirtual('')).toBe('/');
    expect(normalizeVirtual('.')).toBe('/');
    expect(normalizeVirtual('/')).toBe('/');
    expect(normalizeVirtual('a/./b//c/')).toBe('/a/b/c');
    expect(normalizeVirtual('/a/../b')).toBe('/b');
    expect(normalizeVirtual('a/b/../../c')).toBe('/c');
  });

  test('a .. above the root is refused, never clamped', () => {
    for (const p of ['..', '/..', '../x', '/a/../../x', 'a/../..', '../../etc/passwd']) {
      expect(() => normalizeVirtual(p), p).toThrow(OutsideShareError);
    }
  });

  test('a NUL byte is a malformed path', () => {
    expect(() => normalizeVirtual('a\0b')).toThrow(BadPathError);
  });
});

test.describe('resolution', () => {
  test('absolute client paths are relative to the share root, like a chroot', async () => {
    const { share, cleanup } = layout();
    const root = await ShareRoot.open(share);
    await expect(root.resolve('/etc/passwd', { follow: true })).rejects.toMatchObject({ code: 'ENOENT' });
    mkdirSync(path.join(share, 'etc'));
    expect(await root.resolve('/etc/passwd', { follow: true })).toBe(path.join(root.real, 'etc', 'passwd'));
    expect(await root.resolve('/hello.txt', { follow: true })).toBe(path.join(root.real, 'hello.txt'));
    expect(await root.resolve('/', { follow: true })).toBe(root.real);
    cleanup();
  });

  test('links inside the share are followed, hop by hop', async () => {
    const { share, cleanup } = layout();
    const root = await ShareRoot.open(share);
    expect(await root.resolve('in', { follow: true })).toBe(path.join(root.real, 'hello.txt'));
    expect(await root.resolve('chain', { follow: true })).toBe(path.join(root.real, 'hello.txt'));
    expect(await root.resolve('indir/deep.txt', { follow: true })).toBe(path.join(root.real, 'sub', 'deep.txt'));
    expect(await root.resolve('self', { follow: true })).toBe(root.real);
    // A dangling link whose target stays inside may be written through (it creates the target).
    expect(await root.resolve('dangling-in', { follow: true })).toBe(path.join(root.real, 'sub', 'new.txt'));
    cleanup();
  });

  test('links leading outside are refused when followed, whatever their form', async () => {
    const { share, cleanup } = layout();
    const root = await ShareRoot.open(share);
    for (const name of ['out', 'outabs', 'outdir', 'outdir/inner.txt', 'dangling-out', 'up', 'up/secret.txt', 'chain-out', 'sibling', 'sibling/x']) {
      await expect(root.resolve(name, { follow: true }), name).rejects.toThrow(OutsideShareError);
    }
    await expect(root.resolve('loop1', { follow: true })).rejects.toMatchObject({ code: 'ELOOP' });
    cleanup();
  });

  test('without following, the link itself is meant; a link as a parent is still refused', async () => {
    const { share, cleanup } = layout();
    const root = await ShareRoot.open(share);
    expect(await root.resolve('out', { follow: false })).toBe(path.join(root.real, 'out'));
    expect(await root.resolve('dangling-out', { follow: false })).toBe(path.join(root.real, 'dangling-out'));
    for (const name of ['outdir/inner.txt', 'up/secret.txt', 'outdir/new', 'sibling/x']) {
      await expect(root.resolve(name, { follow: false }), name).rejects.toThrow(OutsideShareError);
    }
    // A missing parent is a missing path, not a hole in the check.
    await expect(root.resolve('nope/x', { follow: false })).rejects.toMatchObject({ code: 'ENOENT' });
    cleanup();
  });

  test('a folder reached through a symlink is shared by its real path; siblings sharing a prefix stay outside', async () => {
    const { base, share, cleanup } = layout();
    symlinkSync(share, path.join(base, 'alias'));
    const root = await ShareRoot.open(path.join(base, 'alias'));
    expect(root.real).toBe(await ShareRoot.open(share).then((r) => r.real));
    expect(root.contains(root.real)).toBe(true);
    expect(root.contains(`${root.real}2`)).toBe(false);
    expect(root.contains(path.dirname(root.real))).toBe(false);
    cleanup();
  });

  test('canonical paths map back into the share namespace', async () => {
    const { share, cleanup } = layout();
    const root = await ShareRoot.open(share);
    expect(await root.canonical('.')).toBe('/');
    expect(await root.canonical('/sub/../hello.txt')).toBe('/hello.txt');
    expect(await root.canonical('indir/deep.txt')).toBe('/sub/deep.txt');
    expect(await root.canonical('sub/not-yet')).toBe('/sub/not-yet');
    await expect(root.canonical('/..')).rejects.toThrow(OutsideShareError);
    await expect(root.canonical('outdir')).rejects.toThrow(OutsideShareError);
    cleanup();
  });

  test('a share of a file or a missing folder is refused', async () => {
    const { base, share, cleanup } = layout();
    await expect(ShareRoot.open(path.join(share, 'hello.txt'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(ShareRoot.open(path.join(base, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    cleanup();
  });
});

test.describe('link targets', () => {
  test('readlink shows inside targets in the share namespace and refuses outside ones', async () => {
    const { share, cleanup } = layout();
    symlinkSync(path.join(share, 'sub', 'deep.txt'), path.join(share, 'abs-in'));
    const root = await ShareRoot.open(share);
    expect(await root.readlink('in')).toBe('hello.txt');
    expect(await root.readlink('abs-in')).toBe('/sub/deep.txt');
    for (const name of ['out', 'outabs', 'up', 'dangling-out', 'sibling']) {
      await expect(root.readlink(name), name).rejects.toThrow(OutsideShareError);
    }
    cleanup();
  });

  test('new links must point inside, lexically and through existing links', async () => {
    const { share, cleanup } = layout();
    const root = await ShareRoot.open(share);
    // Absolute targets are share paths; they are stored as real paths so the runner agrees.
    expect(await root.linkTarget('/sub/l1', '/hello.txt')).toEqual({ link: path.join(root.real, 'sub', 'l1'), text: path.join(root.real, 'hello.txt') });
    expect(await root.linkTarget('/sub/l2', '../hello.txt')).toEqual({ link: path.join(root.real, 'sub', 'l2'), text: '../hello.txt' });
    expect(await root.linkTarget('/l3', 'not/yet/there')).toEqual({ link: path.join(root.real, 'l3'), text: 'not/yet/there' });
    for (const [link, target] of [
      ['/l4', '../secret.txt'],
      ['/sub/l5', '../../secret.txt'],
      ['/l6', '/..'],
      ['/l7', 'outdir/inner.txt'],
      ['/l8', 'out'],
      ['/l9', 'up/share2'],
      // The link's folder is read through its real path: indir is sub, so ../.. leaves the share.
      ['/indir/l10', '../../secret.txt'],
    ] as const) {
      await expect(root.linkTarget(link, target), `${link} -> ${target}`).rejects.toThrow(OutsideShareError);
    }
    // The link's own place is checked like any path.
    await expect(root.linkTarget('/outdir/l11', '/hello.txt')).rejects.toThrow(OutsideShareError);
    expect(readlinkSync(path.join(share, 'in'))).toBe('hello.txt');
    cleanup();
  });
});
