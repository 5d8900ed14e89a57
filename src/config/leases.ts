/**
 * The `leases` field of the lab config and the LABWRIGHT_LEASES variable: which store keeps
 * the device leases (src/lease/), how long a lease lives without a heartbeat, how long a
 * request waits. A password in a store URL is a secret: registered for masking, and never
 * part of a description or a problem.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { z } from 'zod';

import { MASK, registerSecret } from '../util/secrets.js';
import { secretSchema } from './schema.js';

/** Environment variable naming the lease store; it wins over the lab config's `leases.store`. */
export const LEASES_ENV = 'LABWRIGHT_LEASES';

/** The embedded store's directory when none is named: one per machine, shared by every process. */
export function defaultLeaseDirectory(): string {
  return path.join(os.tmpdir(), 'labwright-leases');
}

/** Where leases are kept, resolved. `description` is safe to print (no password). */
export type LeaseStoreLocation = { kind: 'embedded'; directory: string; description: string } | { kind: 'postgres'; url: string; description: string };

const ms = () => z.number().int().nonnegative();

/** The `leases` field as written in `lab.config.ts`. */
export const leasesSchema = z.strictObject({
  /**
   * Where leases live: `'embedded'` (the default: a lock directory shared by every process
   * of this machine, under the OS temp directory), an absolute directory path or
   * `file:///dir` URL (the embedded store there), or `postgres://user:password@host:port/database`
   * (PostgreSQL, shared by many machines; tables are created on first use). A literal or
   * `{ env: 'NAME' }`. `$LABWRIGHT_LEASES` overrides it.
   */
  store: secretSchema.optional(),
  /**
   * Time to live of a lease in ms: a holder renews it every third of this, and a holder
   * that stops renewing (killed, frozen, cut off) loses its devices this long after its
   * last renewal. Default 15000.
   */
  ttl: z.number().int().min(500).max(3_600_000).default(15_000),
  /** Bound (ms) on waiting for a busy device, unless a request sets its own. Default 300000. */
  waitTimeout: ms().default(300_000),
  /** Bound (ms) on connecting to the store and on each store operation. Default 10000. */
  connectTimeout: z.number().int().min(100).default(10_000),
});

/** The `leases` field as written in `lab.config.ts`. */
export type LeasesInput = z.input<typeof leasesSchema>;

/** The resolved lease settings of a lab. */
export interface LeaseConfig {
  store: LeaseStoreLocation;
  /** Where the store setting came from: `LABWRIGHT_LEASES`, `leases.store` or `default`. */
  origin: typeof LEASES_ENV | 'leases.store' | 'default';
  /** Lease time to live (ms). */
  ttl: number;
  /** Default bound on waiting (ms). */
  waitTimeout: number;
  /** Bound on connecting and on each store operation (ms). */
  connectTimeout: number;
}

const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)([^@/?#]*)@/i;

/** `value` with the password of a `scheme://user:password@...` URL masked, for messages. */
export function maskUrlPassword(value: string): string {
  return value.replace(URL_PASSWORD, `$1${MASK}@`);
}

const EXPECTED = 'expected "embedded", an absolute directory, file:///directory or postgres://user:password@host:port/database';

/**
 * Parses a store setting. Returns the location, or a problem (which never contains a
 * password). Registers the password of a PostgreSQL URL as a secret.
 */
export function parseLeaseStore(value: string): LeaseStoreLocation | { problem: string } {
  // Registered before anything can fail, so that not even an unparsable URL shows it.
  registerSecret(URL_PASSWORD.exec(value)?.[2]);
  const given = JSON.stringify(maskUrlPassword(value.length > 200 ? `${value.slice(0, 197)}...` : value));
  const trimmed = value.trim();
  if (trimmed === 'embedded') {
    const directory = defaultLeaseDirectory();
    return { kind: 'embedded', directory, description: `embedded store ${directory}` };
  }
  if (trimmed.startsWith('/') || /^file:/i.test(trimmed)) {
    let directory: string;
    try {
      directory = trimmed.startsWith('/') ? trimmed : fileURLToPath(trimmed);
    } catch (error) {
      return { problem: `${EXPECTED}; got ${given} (${(error as Error).message})` };
    }
    return { kind: 'embedded', directory: path.normalize(directory), description: `embedded store ${path.normalize(directory)}` };
  }
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return parsePostgresUrl(trimmed, given);
  return { problem: `${EXPECTED}; got ${given}${trimmed.includes('://') ? '' : ' (a relative path is not accepted: write an absolute one)'}` };
}

function parsePostgresUrl(value: string, given: string): LeaseStoreLocation | { problem: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: `not a valid URL: ${given}; ${EXPECTED}` };
  }
  if (url.password) {
    registerSecret(value);
    registerSecret(url.password);
    try {
      registerSecret(decodeURIComponent(url.password));
    } catch {
      // An undecodable password is passed on as written; its raw form is registered.
    }
  }
  const socketHost = url.searchParams.get('host');
  if (!url.hostname && !socketHost) return { problem: `${given} names no server: give host[:port] (or ?host=/socket/directory)` };
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database.includes('/')) return { problem: `${given}: the database name cannot contain "/"` };
  const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
  const server = url.hostname ? `${url.hostname}${url.port ? `:${url.port}` : ''}` : socketHost!;
  return { kind: 'postgres', url: value, description: `PostgreSQL store postgres://${user}${server}/${database}` };
}

/**
 * Resolves the `leases` field and `$LABWRIGHT_LEASES` into settings, or problems naming the
 * field (`lab → leases.store`, `LABWRIGHT_LEASES`) that gave a bad value.
 */
export function resolveLeaseConfig(
  raw: unknown,
  formatProblems: (issues: readonly z.core.$ZodIssue[]) => string[],
  environment: NodeJS.ProcessEnv = process.env,
): { config?: LeaseConfig; problems: string[] } {
  const parsed = leasesSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!parsed.success) return { problems: formatProblems(parsed.error.issues) };
  const fromEnv = environment[LEASES_ENV];
  const origin: LeaseConfig['origin'] = fromEnv ? LEASES_ENV : parsed.data.store !== undefined ? 'leases.store' : 'default';
  const location = parseLeaseStore(fromEnv || parsed.data.store || 'embedded');
  if ('problem' in location) {
    return { problems: [`${origin === LEASES_ENV ? `environment variable ${LEASES_ENV}` : 'lab → leases.store'}: ${location.problem}`] };
  }
  const { ttl, waitTimeout, connectTimeout } = parsed.data;
  return { config: { store: location, origin, ttl, waitTimeout, connectTimeout }, problems: [] };
}
