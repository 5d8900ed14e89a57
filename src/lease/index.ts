export { type AcquireRequest, Lease, LeaseClient, type LeaseClientEvent, type LeaseClientSettings, type WaitReport } from './client.js';
export { describeHolder, describeHolding, describeWaiter } from './describe.js';
export { EMBEDDED_FORMAT_VERSION, EmbeddedStore, type EmbeddedStoreOptions } from './embeddedStore.js';
export { listLeases } from './list.js';
export { openLeaseStore, storeOrigin } from './open.js';
export { POSTGRES_SCHEMA_VERSION, PostgresStore, type PostgresStoreOptions } from './postgresStore.js';
export { describeSelector, type LeaseDevice, type LeaseSelector, resolveSelectors } from './selector.js';
export type { GrantListener, LeaseStore } from './store.js';
export * from './types.js';
