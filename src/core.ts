/**
 * labwright without Playwright: lab config, hosts, sessions and transfers for any script.
 * `import { Lab, defineLab } from 'labwright/core'`.
 */
export * from './config/index.js';
export * from './host/index.js';
export type { ExpectRule, ExpectMatch, SessionCommandOutcome, SessionLifecycle } from './session/shellSession.js';
export type { TransferOptions, TransferResult } from './transfer/types.js';
export {
  Lease,
  LeaseClient,
  listLeases,
  openLeaseStore,
  describeHolder,
  describeHolding,
  describeWaiter,
  describeSelector,
  type LeaseSelector,
  type LeaseSnapshot,
  type HolderInfo,
  type HolderRecord,
  type WaiterRecord,
  type LeaseStore,
} from './lease/index.js';
export {
  LabwrightError,
  ConfigError,
  ConnectionError,
  SessionClosedError,
  ExpectTimeoutError,
  TransferError,
  TimeoutError,
  LeaseError,
  type LeaseFailure,
  ConsoleBusyError,
  AbortedError,
  PowerError,
  HostUnavailableError,
  type PowerTarget,
  type ConnectFailure,
  type ErrorProtocol,
  type TransferFailure,
} from './util/errors.js';
export { registerSecret, redact, MASK } from './util/secrets.js';
export { QmpClient, type QmpEvent } from './power/qmp.js';
