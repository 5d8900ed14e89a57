export { test, expect, exclusive, hostLock, type LabwrightOptions, type HostFixture, type RemoteHostFixture } from './fixtures.js';
export { TranscriptRecorder } from './transcript.js';
export { labwrightMatchers } from './matchers.js';
export { globalSetup } from './globalSetup.js';
