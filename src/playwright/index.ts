export { test, expect, exclusive, hostLock, type LabwrightOptions, type HostFixture, type RemoteHostFixture } from './fixtures.js';
export type { LeaseFixture, LeaseFixtureOptions, LeaseScope, PoolOption } from './leases.js';
export { TranscriptRecorder } from './transcript.js';
export { labwrightMatchers } from './matchers.js';
export { globalSetup } from './globalSetup.js';
