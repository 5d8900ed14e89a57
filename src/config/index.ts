export * from './schema.js';
export * from './defineLab.js';
export { LEASES_ENV, defaultLeaseDirectory, parseLeaseStore, type LeaseConfig, type LeaseStoreLocation, type LeasesInput } from './leases.js';
export { hopChain, findHopCycle } from './hops.js';
export { loadLab, resolveLabFile, LAB_FILE_ENV, DEFAULT_LAB_FILE } from './load.js';
