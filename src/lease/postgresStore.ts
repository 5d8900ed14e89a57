/**
 * The PostgreSQL lease store (through `pg`), for runners on many machines.
 *
 * - Tables are created and migrated on first use, under an advisory lock so that runners
 *   starting together migrate once; a schema from a newer labwright is refused.
 * - Every operation is one transaction under a transaction-scoped advisory lock: the queue is
 *   served by one decision at a time, which is what keeps it first-come-first-served across
 *   selectors (`FOR UPDATE SKIP LOCKED` would let each requester grab any free row and a late
 *   request overtake an early one). Two round trips per operation: BEGIN + lock + read, then
 *   the writes + NOTIFY + COMMIT.
 * - Time is the server's (`clock_timestamp()`): runners' clocks never decide expiry.
 * - Grants are announced with NOTIFY on `labwright_leases` (the granted request ids); waiters
 *   LISTEN on a connection of their own, re-established after a server restart.
 * - A client that dies inside a transaction loses its connection and the server rolls back,
 *   releasing the lock; `idle_in_transaction_session_timeout` covers a client cut off the network.
 */
import type PgModule from 'pg';
import type { Client, ClientConfig, Pool, PoolClient, QueryResult } from 'pg';

import { LeaseError, messageOf } from '../util/errors.js';
import { type BookChanges, LeaseBook } from './book.js';
import { BookStore } from './store.js';
import type { HolderRecord, LeaseState, WaiterRecord } from './types.js';

/** Schema version this labwright writes; each entry of MIGRATIONS moves one version up. */
export const POSTGRES_SCHEMA_VERSION = 1;

const MIGRATIONS: readonly string[] = [
  // 1: holders (one row per held device), waiters (the queue), the sequence of ids and tokens.
  `CREATE TABLE labwright_lease_holders (
     device text PRIMARY KEY,
     token bigint NOT NULL,
     request_id bigint NOT NULL,
     holder jsonb NOT NULL,
     since timestamptz NOT NULL,
     expires_at timestamptz NOT NULL,
     ttl_ms integer NOT NULL
   );
   CREATE TABLE labwright_lease_waiters (
     id bigint PRIMARY KEY,
     priority integer NOT NULL,
     slots jsonb NOT NULL,
     selector text NOT NULL,
     holder jsonb NOT NULL,
     enqueued_at timestamptz NOT NULL,
     expires_at timestamptz NOT NULL,
     ttl_ms integer NOT NULL
   );
   INSERT INTO labwright_lease_meta (key, value) VALUES ('seq', 0) ON CONFLICT DO NOTHING;`,
];

/** Advisory lock keys (two-int form): 'lbwl' and the purpose. */
const LOCK_SPACE = 0x6c62776c;
const SCHEDULE_LOCK = `${LOCK_SPACE}, 1`;
const MIGRATE_LOCK = `${LOCK_SPACE}, 2`;
/** NOTIFY channel carrying granted request ids. */
export const NOTIFY_CHANNEL = 'labwright_leases';

const ms = (column: string) => `(extract(epoch from ${column}) * 1000)::bigint`;
const STATE_QUERY = `SELECT floor(extract(epoch from clock_timestamp()) * 1000)::bigint AS now,
  (SELECT value FROM labwright_lease_meta WHERE key = 'seq') AS seq,
  (SELECT coalesce(json_agg(json_build_object('device', device, 'token', token, 'requestId', request_id, 'holder', holder,
     'since', ${ms('since')}, 'expiresAt', ${ms('expires_at')}, 'ttlMs', ttl_ms)), '[]'::json) FROM labwright_lease_holders) AS holders,
  (SELECT coalesce(json_agg(json_build_object('id', id, 'priority', priority, 'slots', slots, 'selector', selector, 'holder', holder,
     'enqueuedAt', ${ms('enqueued_at')}, 'expiresAt', ${ms('expires_at')}, 'ttlMs', ttl_ms)), '[]'::json) FROM labwright_lease_waiters) AS waiters`;

interface StateRow {
  now: string;
  seq: string | null;
  holders: HolderRecord[];
  waiters: WaiterRecord[];
}

export interface PostgresStoreOptions {
  /** Connection URL (may hold a password: it is never printed). */
  url: string;
  /** The store described without secrets. */
  description: string;
  /** Where the URL was set, for hints: `LABWRIGHT_LEASES` or `leases.store`. */
  origin: string;
  /** Bound (ms) on connecting and on each statement. */
  connectTimeout: number;
}

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);
/** SQLSTATEs meaning "not now": shutting down, starting, too many connections. */
const TRANSIENT_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** SQLSTATEs meaning "too slow": lock or statement timeout, serialization failure, deadlock. */
const SLOW_STATES = new Set(['55P03', '57014', '40001', '40P01']);

export class PostgresStore extends BookStore {
  readonly description: string;
  private listener: Client | undefined;
  private listening: Promise<void> | undefined;
  private subscribers = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Connections that have this store's error listener. */
  private readonly guarded = new WeakSet<PoolClient>();

  private constructor(
    private readonly pg: typeof PgModule,
    private readonly pool: Pool,
    private readonly options: PostgresStoreOptions,
  ) {
    super();
    this.description = options.description;
  }

  /** Connects, creates or migrates the tables, and returns the store. Fails at once, naming the store, if it cannot. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ ...connectionConfig(options), max: 4, idleTimeoutMillis: 30_000, allowExitOnIdle: true });
    // An idle connection dropped by the server (restart) is only discarded; the next query connects anew.
    pool.on('error', () => {});
    const store = new PostgresStore(pg, pool, options);
    try {
      await store.migrate();
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
    return store;
  }

  /** A LeaseError naming the store: `unreachable` for connection trouble, `store` otherwise. */
  private classify(error: unknown): LeaseError {
    if (error instanceof LeaseError) return error;
    const code = (error as { code?: string }).code ?? '';
    const message = messageOf(error);
    const where = `${this.description} (set by ${this.options.origin})`;
    if (SLOW_STATES.has(code) || /query read timeout/i.test(message)) {
      return new LeaseError('unreachable', `${where} did not answer within ${this.options.connectTimeout} ms: ${message}.`, {
        hint: 'The server is overloaded, or a client holds the lease tables locked; see pg_stat_activity (application_name "labwright leases").',
        cause: error,
      });
    }
    const unreachable =
      TRANSIENT_CODES.has(code) ||
      TRANSIENT_STATES.has(code) ||
      code.startsWith('08') ||
      /connection terminated|timeout exceeded when trying to connect|not queryable|timeout expired/i.test(message);
    if (unreachable) {
      return new LeaseError('unreachable', `${where} is unreachable: ${message}.`, {
        hint: `Start the server or fix the URL; labwright never falls back to local locks when a store is configured.`,
        cause: error,
      });
    }
    const hint =
      code === '28P01' || code === '28000'
        ? `Check the user and password in ${this.options.origin}.`
        : code === '3D000'
          ? 'Create the database (createdb) or name an existing one in the URL.'
          : code === '42501'
            ? 'Grant the user CREATE on the schema (labwright creates its tables on first use) or create them as another user.'
            : 'See the PostgreSQL server log for more.';
    return new LeaseError('store', `${where} refused the operation: ${message}${code ? ` (SQLSTATE ${code})` : ''}.`, { hint, cause: error });
  }

  private async connect(): Promise<PoolClient> {
    if (this.closed) throw new LeaseError('store', `${this.description} was closed.`, { hint: 'Open the lab again.' });
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.classify(error);
    }
    // pg emits 'error' on a connection that dies, even while a query on it fails with the same
    // error; the pool listens only to idle connections, so a checked-out one needs a listener
    // too, or a server shutting down mid-operation crashes the process.
    if (!this.guarded.has(client)) {
      this.guarded.add(client);
      client.on('error', () => {});
    }
    return client;
  }

  private async migrate(): Promise<void> {
    const client = await this.connect();
    let broken = false;
    try {
      const current = await client
        .query<{ value: string }>(`SELECT value FROM labwright_lease_meta WHERE key = 'schema_version'`)
        .catch((error: { code?: string }) => {
          if (error.code === '42P01') return undefined; // no table yet
          throw error;
        });
      if (Number(current?.rows[0]?.value ?? 0) === POSTGRES_SCHEMA_VERSION) return;
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${MIGRATE_LOCK});
        CREATE TABLE IF NOT EXISTS labwright_lease_meta (key text PRIMARY KEY, value bigint NOT NULL)`);
      const found = await client.query<{ value: string }>(`SELECT value FROM labwright_lease_meta WHERE key = 'schema_version'`);
      const version = Number(found.rows[0]?.value ?? 0);
      if (version > POSTGRES_SCHEMA_VERSION) {
        await client.query('ROLLBACK');
        throw new LeaseError(
          'store',
          `${this.description} has lease tables of schema version ${version}, made by a newer labwright (this one knows ${POSTGRES_SCHEMA_VERSION}).`,
          { hint: 'Use the same labwright version on every runner sharing the store, or give this one another database.' },
        );
      }
      for (let next = version; next < POSTGRES_SCHEMA_VERSION; next++) await client.query(MIGRATIONS[next]!);
      await client.query(
        `INSERT INTO labwright_lease_meta (key, value) VALUES ('schema_version', ${POSTGRES_SCHEMA_VERSION})
         ON CONFLICT (key) DO UPDATE SET value = excluded.value; COMMIT`,
      );
    } catch (error) {
      broken = true;
      await client.query('ROLLBACK').catch(() => {});
      throw this.classify(error);
    } finally {
      client.release(broken);
    }
  }

  protected async transact<T>(operation: (book: LeaseBook) => T): Promise<T> {
    const client = await this.connect();
    let committed = false;
    try {
      const results = (await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${SCHEDULE_LOCK}); ${STATE_QUERY}`)) as unknown as QueryResult<StateRow>[];
      const book = bookOf(results[2]!.rows[0]!);
      const value = operation(book);
      await client.query(`${writes(book.changes(), book.granted, (text) => this.pg.escapeLiteral(text))} COMMIT`);
      committed = true;
      return value;
    } catch (error) {
      if (!committed) await client.query('ROLLBACK').catch(() => {});
      throw this.classify(error);
    } finally {
      // A connection that failed mid-transaction is dropped, never reused.
      client.release(!committed);
    }
  }

  protected async read(): Promise<LeaseBook> {
    const client = await this.connect();
    let failed = false;
    try {
      return bookOf((await client.query<StateRow>(STATE_QUERY)).rows[0]!);
    } catch (error) {
      failed = true;
      throw this.classify(error);
    } finally {
      client.release(failed);
    }
  }

  override onGrant(listener: (requestIds: readonly number[] | undefined) => void): () => void {
    const unsubscribe = super.onGrant(listener);
    this.subscribers++;
    void this.listen();
    return () => {
      unsubscribe();
      if (--this.subscribers === 0) this.unlisten();
    };
  }

  /** LISTENs on a connection of its own while anybody waits; reconnects (and wakes everyone) after a loss. */
  private listen(): Promise<void> {
    if (this.listener || this.listening || this.closed || this.subscribers === 0) return this.listening ?? Promise.resolve();
    this.listening = (async () => {
      const client = new this.pg.Client(connectionConfig(this.options));
      const lost = () => {
        if (this.listener !== client) return;
        this.listener = undefined;
        client.end().catch(() => {});
        this.scheduleReconnect();
      };
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (message) => {
        if (message.channel !== NOTIFY_CHANNEL) return;
        const ids = (message.payload ?? '').split(',').filter(Boolean).map(Number);
        this.wake(ids.length > 0 ? ids : undefined);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
        this.listener = client;
        // Grants made while nobody listened were missed: everyone checks once.
        this.wake(undefined);
        if (this.closed || this.subscribers === 0) this.unlisten();
      } catch {
        client.end().catch(() => {});
        this.scheduleReconnect();
      }
    })().finally(() => (this.listening = undefined));
    return this.listening;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.subscribers === 0 || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.listen();
    }, 500);
    this.reconnectTimer.unref();
  }

  private unlisten(): void {
    const client = this.listener;
    this.listener = undefined;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    client?.removeAllListeners('end');
    client?.end().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unlisten();
    await this.listening?.catch(() => {});
    await this.pool.end().catch(() => {});
  }
}

function connectionConfig(options: PostgresStoreOptions): ClientConfig {
  return {
    connectionString: options.url,
    connectionTimeoutMillis: options.connectTimeout,
    query_timeout: options.connectTimeout,
    statement_timeout: options.connectTimeout,
    lock_timeout: options.connectTimeout,
    // A client cut off inside a transaction would keep the schedule lock; the server drops it.
    idle_in_transaction_session_timeout: Math.max(options.connectTimeout, 5_000),
    application_name: 'labwright leases',
    keepAlive: true,
  };
}

function bookOf(row: StateRow): LeaseBook {
  const state: LeaseState = { seq: Number(row.seq ?? 0), holders: row.holders, waiters: row.waiters };
  return new LeaseBook(state, Number(row.now));
}

/** The statements writing `changes` back (plus NOTIFY for grants); values travel as escaped JSON literals. */
function writes(changes: BookChanges, granted: readonly number[], literal: (text: string) => string): string {
  const json = (value: unknown) => `${literal(JSON.stringify(value))}::jsonb`;
  const time = (column: string) => `'epoch'::timestamptz + ${column} * interval '1 millisecond'`;
  const statements: string[] = [];
  if (changes.deleteHolders.length > 0) {
    statements.push(`DELETE FROM labwright_lease_holders WHERE device IN (SELECT jsonb_array_elements_text(${json(changes.deleteHolders)}))`);
  }
  if (changes.upsertHolders.length > 0) {
    const rows = changes.upsertHolders.map((h) => ({
      device: h.device,
      token: h.token,
      request_id: h.requestId,
      holder: h.holder,
      since: h.since,
      expires_at: h.expiresAt,
      ttl_ms: h.ttlMs,
    }));
    statements.push(
      `INSERT INTO labwright_lease_holders (device, token, request_id, holder, since, expires_at, ttl_ms)
       SELECT device, token, request_id, holder, ${time('since')}, ${time('expires_at')}, ttl_ms
       FROM jsonb_to_recordset(${json(rows)}) AS r(device text, token bigint, request_id bigint, holder jsonb, since bigint, expires_at bigint, ttl_ms integer)
       ON CONFLICT (device) DO UPDATE SET token = excluded.token, request_id = excluded.request_id, holder = excluded.holder,
         since = excluded.since, expires_at = excluded.expires_at, ttl_ms = excluded.ttl_ms`,
    );
  }
  if (changes.deleteWaiters.length > 0) {
    statements.push(`DELETE FROM labwright_lease_waiters WHERE id IN (SELECT jsonb_array_elements_text(${json(changes.deleteWaiters)})::bigint)`);
  }
  if (changes.upsertWaiters.length > 0) {
    const rows = changes.upsertWaiters.map((w) => ({
      id: w.id,
      priority: w.priority,
      slots: w.slots,
      selector: w.selector,
      holder: w.holder,
      enqueued_at: w.enqueuedAt,
      expires_at: w.expiresAt,
      ttl_ms: w.ttlMs,
    }));
    statements.push(
      `INSERT INTO labwright_lease_waiters (id, priority, slots, selector, holder, enqueued_at, expires_at, ttl_ms)
       SELECT id, priority, slots, selector, holder, ${time('enqueued_at')}, ${time('expires_at')}, ttl_ms
       FROM jsonb_to_recordset(${json(rows)}) AS r(id bigint, priority integer, slots jsonb, selector text, holder jsonb, enqueued_at bigint, expires_at bigint, ttl_ms integer)
       ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`,
    );
  }
  if (changes.seq !== undefined) statements.push(`UPDATE labwright_lease_meta SET value = ${Number(changes.seq)} WHERE key = 'seq'`);
  if (granted.length > 0) statements.push(`SELECT pg_notify('${NOTIFY_CHANNEL}', ${literal(granted.join(','))})`);
  return statements.map((statement) => `${statement};`).join('\n');
}
