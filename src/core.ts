/**
 * labwright without Playwright: lab config, hosts, sessions and transfers for any script.
 * `import { Lab, defineLab } from 'labwright/core'`.
 */
export * from './config/index.js';
export * from './host/index.js';
export {
  describeHolder,
  describeHolding,
  describeSelector,
  describeWaiter,
  type HolderInfo,
  type HolderRecord,
  Lease,
  LeaseClient,
  type LeaseSelector,
  type LeaseSnapshot,
  type LeaseStore,
  listLeases,
  openLeaseStore,
  type WaiterRecord,
} from './lease/index.js';
export { QmpClient, type QmpEvent } from './power/qmp.js';
export type { ExpectMatch, ExpectRule, SessionCommandOutcome, SessionLifecycle } from './session/shellSession.js';
export type { TransferOptions, TransferResult } from './transfer/types.js';
export {
  AbortedError,
  ConfigError,
  type ConnectFailure,
  ConnectionError,
  ConsoleBusyError,
  type ErrorProtocol,
  ExpectTimeoutError,
  HostUnavailableError,
  LabwrightError,
  LeaseError,
  type LeaseFailure,
  PowerError,
  type PowerTarget,
  SessionClosedError,
  TimeoutError,
  TransferError,
  type TransferFailure,
} from './util/errors.js';
export { MASK, redact, registerSecret } from './util/secrets.js';
