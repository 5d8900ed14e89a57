/** Opens the lease store a lab's settings name. */
import type { LeaseConfig } from '../config/leases.js';
import { registerSecret } from '../util/secrets.js';
import { EmbeddedStore } from './embeddedStore.js';
import { PostgresStore } from './postgresStore.js';
import type { LeaseStore } from './store.js';

/** Where the store setting came from, for hints. */
export function storeOrigin(config: LeaseConfig): string {
  return config.origin === 'default'
    ? 'the default (no leases.store, no LABWRIGHT_LEASES)'
    : config.origin === 'leases.store'
      ? 'leases.store in the lab config'
      : 'LABWRIGHT_LEASES';
}

/**
 * Opens the store: the embedded one at once; PostgreSQL after connecting and creating or
 * migrating its tables. An unreachable store is a LeaseError naming it; there is no fall-back.
 */
export async function openLeaseStore(config: LeaseConfig): Promise<LeaseStore> {
  const { store } = config;
  if (store.kind === 'embedded') return new EmbeddedStore({ directory: store.directory, lockTimeout: config.connectTimeout });
  // libpq's variable, which pg reads when the URL has no password.
  registerSecret(process.env.PGPASSWORD);
  return PostgresStore.open({ url: store.url, description: store.description, origin: storeOrigin(config), connectTimeout: config.connectTimeout });
}
