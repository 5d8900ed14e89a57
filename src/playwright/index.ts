export { NO_LOGS, noLogs } from './failureLogs.js';
export {
  exclusive,
  expect,
  type HostFixture,
  hostLock,
  type LabwrightOptions,
  type LabwrightTestOptions,
  type LabwrightWorkerOptions,
  type RemoteHostFixture,
  test,
} from './fixtures.js';
export { globalSetup } from './globalSetup.js';
export type { LeaseFixture, LeaseFixtureOptions, LeaseScope, PoolOption } from './leases.js';
export { labwrightMatchers } from './matchers.js';
export { TranscriptRecorder } from './transcript.js';
