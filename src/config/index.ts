export * from './defineLab.js';
export { findHopCycle, hopChain } from './hops.js';
export { defaultLeaseDirectory, type LeaseConfig, LEASES_ENV, type LeasesInput, type LeaseStoreLocation, parseLeaseStore } from './leases.js';
export { DEFAULT_LAB_FILE, LAB_FILE_ENV, loadLab, resolveLabFile } from './load.js';
export * from './schema.js';
export { DEFAULT_SSH_CONFIG, OpenSshConfig, type SshConfigInput, type SshConfigOptions, withSshConfig } from './sshConfig.js';
