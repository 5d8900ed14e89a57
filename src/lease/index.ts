export * from './types.js';
export { LeaseClient, Lease, type AcquireRequest, type LeaseClientEvent, type LeaseClientSettings, type WaitReport } from './client.js';
export type { LeaseStore, GrantListener } from './store.js';
export { EmbeddedStore, EMBEDDED_FORMAT_VERSION, type EmbeddedStoreOptions } from './embeddedStore.js';
export { PostgresStore, POSTGRES_SCHEMA_VERSION, type PostgresStoreOptions } from './postgresStore.js';
export { openLeaseStore, storeOrigin } from './open.js';
export { listLeases } from './list.js';
export { describeSelector, resolveSelectors, type LeaseSelector, type LeaseDevice } from './selector.js';
export { describeHolder, describeHolding, describeWaiter } from './describe.js';
