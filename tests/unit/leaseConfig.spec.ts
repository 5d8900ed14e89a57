/** The `leases` field of the lab config, LABWRIGHT_LEASES, and lease selectors. */
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { defineLab, type LabInput } from '../../src/config/defineLab.js';
import { parseLeaseStore } from '../../src/config/leases.js';
import { resolveSelectors } from '../../src/lease/selector.js';
import { LeaseError } from '../../src/util/errors.js';
import { redact } from '../../src/util/secrets.js';

function problem(input: LabInput, env: Record<string, string | undefined> = {}): string {
  const saved = process.env.LABWRIGHT_LEASES;
  if ('LABWRIGHT_LEASES' in env) process.env.LABWRIGHT_LEASES = env.LABWRIGHT_LEASES;
  else delete process.env.LABWRIGHT_LEASES;
  try {
    defineLab(input);
  } catch (error) {
    return (error as Error).message;
  } finally {
    if (saved === undefined) delete process.env.LABWRIGHT_LEASES;
    else process.env.LABWRIGHT_LEASES = saved;
  }
  throw new Error('accepted');
}

function leasesOf(input: LabInput, environment: string | undefined) {
  const saved = process.env.LABWRIGHT_LEASES;
  if (environment === undefined) delete process.env.LABWRIGHT_LEASES;
  else process.env.LABWRIGHT_LEASES = environment;
  try {
    return defineLab(input).leases;
  } finally {
    if (saved === undefined) delete process.env.LABWRIGHT_LEASES;
    else process.env.LABWRIGHT_LEASES = saved;
  }
}

test('without a setting the embedded store in the temp directory is used, with a 15 s TTL', () => {
  const leases = leasesOf({}, undefined);
  expect(leases).toMatchObject({
    origin: 'default',
    ttl: 15_000,
    waitTimeout: 300_000,
    store: { kind: 'embedded', directory: path.join(os.tmpdir(), 'labwright-leases') },
  });
});

test('store forms: embedded, a directory, a file URL, a PostgreSQL URL; LABWRIGHT_LEASES wins over the config', () => {
  expect(parseLeaseStore('/srv/leases')).toMatchObject({ kind: 'embedded', directory: '/srv/leases' });
  expect(parseLeaseStore('file:///srv/leases')).toMatchObject({ kind: 'embedded', directory: '/srv/leases' });
  expect(parseLeaseStore('postgresql://lab@db.example:5433/lab')).toMatchObject({
    kind: 'postgres',
    description: 'PostgreSQL store postgres://lab@db.example:5433/lab',
  });
  const leases = leasesOf({ leases: { store: '/from/config', ttl: 2_000 } }, 'postgres://ci@db/leases');
  expect(leases).toMatchObject({ origin: 'LABWRIGHT_LEASES', ttl: 2_000, store: { kind: 'postgres' } });
  expect(leasesOf({ leases: { store: '/from/config' } }, undefined)).toMatchObject({ origin: 'leases.store', store: { directory: '/from/config' } });
});

test('a password in the store URL is a secret: registered for masking and never in a description or a problem', () => {
  const location = parseLeaseStore('postgres://lab:S3cret-pw%21@db.example/lab');
  expect('description' in location && location.description).toBe('PostgreSQL store postgres://lab@db.example/lab');
  expect(redact('connect with S3cret-pw! or S3cret-pw%21')).toBe('connect with ****** or ******');
  const message = problem({ leases: { store: 'mysql://lab:Hunter2-pw@db/lab' } });
  expect(message).toContain('lab → leases.store: expected "embedded", an absolute directory, file:///directory or postgres://user:password@host:port/database');
  expect(message).toContain('"mysql://lab:******@db/lab"');
  expect(message).not.toContain('Hunter2');
});

test('bad settings are config errors naming the field, or the environment variable', () => {
  expect(problem({ leases: { store: 'relative/dir' } })).toMatch(/lab → leases\.store: .*got "relative\/dir" \(a relative path is not accepted/);
  const unparsable = problem({}, { LABWRIGHT_LEASES: 'postgres://lab:pw-in-env@/lab' });
  expect(unparsable).toContain('environment variable LABWRIGHT_LEASES: not a valid URL: "postgres://lab:******@/lab"');
  expect(redact('pw-in-env')).toBe('******');
  expect(problem({}, { LABWRIGHT_LEASES: 'postgres:///lab' })).toContain('environment variable LABWRIGHT_LEASES: "postgres:///lab" names no server');
  expect(problem({ leases: { ttl: 10 } })).toMatch(/lab → leases\.ttl: expected a value >= 500, got 10/);
  expect(problem({ leases: { tll: 1_000 } as never })).toMatch(/lab → leases\.tll: unknown field \(did you mean "ttl"\?\)/);
});

const devices = [
  { name: 'a', tags: ['arm64', 'rev-b'] },
  { name: 'b', tags: ['arm64'] },
  { name: 'c', tags: ['x86'] },
];

test('selectors resolve to slots of candidate devices', () => {
  expect(resolveSelectors(['c'], devices)).toEqual({ slots: [['c']], text: 'c' });
  expect(resolveSelectors([{ tags: ['arm64'] }, { host: 'c' }], devices)).toEqual({ slots: [['a', 'b'], ['c']], text: 'tags [arm64] + c' });
  expect(resolveSelectors([{ tags: ['arm64', 'rev-b'] }], devices).slots).toEqual([['a']]);
});

test('selectors that can never be served are refused at once, with what exists', () => {
  const refusal = (selectors: Parameters<typeof resolveSelectors>[0]) => {
    try {
      resolveSelectors(selectors, devices, 'lab.config.ts');
    } catch (error) {
      expect(error).toBeInstanceOf(LeaseError);
      expect((error as LeaseError).kind).toBe('no-match');
      return (error as Error).message;
    }
    throw new Error('accepted');
  };
  expect(refusal(['d'])).toContain('no host named "d" in lab.config.ts');
  expect(refusal([{ tags: ['riscv'] }])).toContain('no host of lab.config.ts has every tag of [riscv]; hosts with tags: a [arm64, rev-b], b [arm64], c [x86]');
  expect(refusal([{ tags: ['x86'] }, 'c'])).toContain('can never be served at once');
  expect(refusal(['a', 'a'])).toContain('can never be served at once');
});
