/**
 * Playwright fixtures: `lab` (worker scope, loaded on first use), `host(name)`, `dut` (the
 * project's default host), steps and transcripts for every command, named sessions closed
 * at the end of each test, and option fixtures that point a suite at a lab and a device.
 */
import { expect as baseExpect, test as base, type TestInfo } from '@playwright/test';

// --- report steps, failure logs, config error once (cli branch) ---
import { resolveLabFile } from '../config/load.js';
import type { Host } from '../host/host.js';
import { Lab } from '../host/lab.js';
import type { RemoteHost } from '../host/remoteHost.js';
import { ConfigError, LabwrightError } from '../util/errors.js';
import { reportingStep } from './commandSteps.js';
import { claimConfigErrorReport } from './configErrorOnce.js';
import { attachFailureLogs, wantsLogs } from './failureLogs.js';
import {
  EXCLUSIVE_ANNOTATION,
  exclusiveFixture,
  type LeaseFixture,
  leaseFixture,
  type LeaseProjectOptions,
  poolFixture,
  type WorkerLeases,
  workerLeasesFixture,
} from './leases.js';
import { labwrightMatchers } from './matchers.js';
import { applyMarks, recoverHosts, testFailed } from './recovery.js';
import { layOutForReport } from './reportLayout.js';
import { TranscriptRecorder } from './transcript.js';
// --- end ---

/** Options a project can set in `use: {...}` of playwright.config.ts (worker scope; `pool`: see leases.ts). */
export interface LabwrightWorkerOptions extends LeaseProjectOptions {
  /** Lab file; default `$LABWRIGHT_LAB`, else `lab.config.ts` in the working directory. */
  labFile: string | undefined;
  /** Host returned by `host()` without a name and by the `dut` fixture. Default `local`. */
  defaultHost: string;
  /** Command timeout (ms) for hosts whose config sets none; default: the lab's `defaults.commandTimeout`, else 30 s. */
  commandTimeout: number | undefined;
}

/** Options a project, file or describe block can set with `use`/`test.use` (test scope). */
export interface LabwrightTestOptions {
  /** Collect each used host's `logs` (commands and files) when a test fails, attached as `logs: <host>`. Default true. */
  collectLogs: boolean;
}

/** Every labwright option, for `defineConfig<LabwrightOptions>()`. */
export type LabwrightOptions = LabwrightWorkerOptions & LabwrightTestOptions;

/** Returns a lab host (the same object for the whole worker); it connects on first command. */
export type HostFixture = (name?: string) => Promise<Host>;

/** Returns a remote lab host, typed for forwards and shares; throws for `local`. */
export type RemoteHostFixture = (name?: string) => Promise<RemoteHost>;

interface WorkerFixtures {
  /** The lab, loaded once per worker when a test first needs it. */
  lab: Lab;
  /** Leases held until the worker ends (leases.ts). */
  _labwrightWorkerLeases: WorkerLeases;
}

interface TestFixtures {
  host: HostFixture;
  remote: RemoteHostFixture;
  /** The project's default host (`defaultHost` option): the device under test. */
  dut: Host;
  /** Records transcripts and steps for the current test; automatic. */
  _labwrightRecorder: void;
  // --- leases (leases.ts) ---
  /** Leases hosts for this test (or worker); released at its end. */
  lease: LeaseFixture;
  /** The project's pool host, when it has a `pool`. */
  _labwrightPool: Host | undefined;
  /** Holds the leases of `exclusive()` for the test. */
  _labwrightExclusive: void;
  // --- end leases ---
}

/** Set when the lab config is invalid and another test reported it: tests that need a host are skipped. */
let configReportedBy: string | undefined;

/** Skips the current test when the lab config is invalid and was reported by another test. */
function skipIfConfigReported(): void {
  base.skip(configReportedBy !== undefined, `the lab configuration is invalid; the test "${configReportedBy}" reports why`);
}

/** Stands in for the lab when its config is invalid: any use says so. */
function invalidLab(reporter: string): Lab {
  return new Proxy({} as Lab, {
    get() {
      throw new LabwrightError(`the lab configuration is invalid; the test "${reporter}" reports the problems.`, {
        protocol: 'config',
        hint: 'Fix the lab file.',
      });
    },
  });
}

/** The test running in this worker, so the worker-scoped lab can report into it and stop with it. */
interface ActiveTest {
  recorder: TranscriptRecorder;
  testInfo: TestInfo;
  /** Fires when the test ends, for whatever reason: what runs for it stops. */
  controller: AbortController;
  started: number;
  /** Set while the hosts are recovered after the test failed: the test's time no longer applies. */
  recovering?: boolean;
}
let active: ActiveTest | undefined;

/** Longest wait, after a test ended, for the commands it left running to report how they ended. */
const SETTLE_AFTER_TEST_MS = 15_000;
/** This worker's lab once loaded. */
let workerLab: Lab | undefined;

/**
 * `test` with labwright's fixtures.
 *
 * ```ts
 * import { test, expect } from 'labwright';
 * test('reports its version', async ({ host }) => {
 *   const dut = await host('dut1');
 *   expect(await dut.run('fw --version')).toHaveOutput(/^fw 2\./);
 * });
 * ```
 */
export const test = base.extend<TestFixtures & LabwrightTestOptions, WorkerFixtures & LabwrightWorkerOptions>({
  labFile: [undefined, { option: true, scope: 'worker' }],
  defaultHost: ['local', { option: true, scope: 'worker' }],
  commandTimeout: [undefined, { option: true, scope: 'worker' }],
  collectLogs: [true, { option: true }],
  // --- leases (leases.ts) ---
  pool: [undefined, { option: true, scope: 'worker' }],
  _labwrightWorkerLeases: [workerLeasesFixture, { scope: 'worker', title: 'labwright worker leases' }],
  _labwrightExclusive: [exclusiveFixture, { title: 'labwright exclusive leases' }],
  _labwrightPool: [poolFixture, { title: 'labwright pool' }],
  lease: leaseFixture,
  // --- end leases ---

  lab: [
    async ({ labFile, commandTimeout }, use, workerInfo) => {
      let lab: Lab;
      try {
        lab = await Lab.load(labFile, { commandTimeout });
      } catch (error) {
        // Reported once per run, by the first test that needs the lab; the host fixtures
        // skip the others (a skip here would mark the worker's later tests passed unrun).
        const reporter = error instanceof ConfigError ? claimConfigErrorReport(resolveLabFile(labFile), base.info().titlePath.join(' › ')) : undefined;
        if (reporter === undefined) throw layOutForReport(error);
        configReportedBy = reporter;
        await use(invalidLab(reporter));
        return;
      }
      // Hosts an earlier worker of this run could not recover fail at once here.
      applyMarks(lab, workerInfo.project.outputDir);
      workerLab = lab;
      const stopListening = lab.events.on((event) => active?.recorder.record(event));
      lab.bindTest({
        step: (title, body) => (active ? reportingStep(title, body) : body()),
        signal: () => active?.controller.signal,
        deadline: () => (active && !active.recovering && active.testInfo.timeout > 0 ? active.started + active.testInfo.timeout : undefined),
      });
      await use(lab);
      stopListening();
      workerLab = undefined;
      await lab.close();
    },
    { scope: 'worker', title: 'labwright lab' },
  ],

  _labwrightRecorder: [
    async ({ collectLogs }, use, testInfo) => {
      const recorder = new TranscriptRecorder();
      const current: ActiveTest = { recorder, testInfo, controller: new AbortController(), started: Date.now() };
      active = current;
      try {
        await use();
      } finally {
        // Whatever the test left running (a command cut by the test's timeout, an exec it
        // did not await) is interrupted now, and its end is recorded before the transcript
        // is attached; the next test finds the shells recovered.
        current.controller.abort(new Error(`the test ended (${describeEnd(testInfo)})`));
        await recorder.settled(SETTLE_AFTER_TEST_MS);
        if (workerLab && testFailed(testInfo)) {
          // Recovery runs for the failed test (its transcript and console log show it) with a signal of its own.
          current.controller = new AbortController();
          current.recovering = true;
          await recoverHosts(workerLab, [...new Set([...recorder.hosts, ...recorder.consoleHosts])], testInfo);
        }
        flushConsoleLogs(recorder);
        active = undefined;
        await closeSessionsOpenedIn(recorder);
        for (const host of recorder.hosts) {
          await testInfo.attach(`transcript: ${host}`, { body: recorder.render(host), contentType: 'text/plain' });
        }
        for (const host of recorder.consoleHosts) {
          await testInfo.attach(`console: ${host}`, { body: recorder.renderConsole(host), contentType: 'text/plain' });
        }
        if (workerLab && wantsLogs(testInfo, collectLogs)) await attachFailureLogs(workerLab, recorder.hosts, testInfo);
      }
    },
    // No fixture timeout: recovering a device after a failed test may take minutes, and
    // every wait in it has its own bound (lifecycle.healthTimeout, upTimeout, the PDU's timeout).
    { auto: true, title: 'labwright transcripts', timeout: 0 },
  ],

  host: async ({ lab, defaultHost, _labwrightExclusive }, use) => {
    skipIfConfigReported();
    await use(async (name?: string) => reported(() => lab.host(name ?? defaultHost)));
  },

  remote: async ({ lab, defaultHost, _labwrightExclusive }, use) => {
    skipIfConfigReported();
    await use(async (name?: string) => reported(() => lab.remote(name ?? defaultHost)));
  },

  dut: async ({ host, _labwrightPool }, use) => {
    await use(_labwrightPool ?? (await host()));
  },
});

/** Runs `body`, laying a labwright error out for the report. */
function reported<T>(body: () => T): T {
  try {
    return body();
  } catch (error) {
    throw layOutForReport(error);
  }
}

/** How a test ended, for the abort reason of what it left running. */
function describeEnd(testInfo: TestInfo): string {
  switch (testInfo.status) {
    case 'timedOut':
      return `its ${testInfo.timeout} ms timeout was exceeded`;
    case 'interrupted':
      return 'the run was interrupted';
    case 'failed':
      return 'it failed';
    case 'skipped':
      return 'it was skipped';
    default:
      return 'it finished';
  }
}

/** Shows each console's open line (a prompt waiting for input) in this test's console log. */
function flushConsoleLogs(recorder: TranscriptRecorder): void {
  if (!workerLab) return;
  for (const host of recorder.consoleHosts) {
    try {
      workerLab.remote(host).console.flushLog();
    } catch {
      // Not a console host after all: nothing to flush.
    }
  }
}

/** Closes the named sessions opened during a test (those opened in worker hooks stay). */
async function closeSessionsOpenedIn(recorder: TranscriptRecorder): Promise<void> {
  if (!workerLab) return;
  for (const [hostName, names] of recorder.openedSessions) {
    const host = workerLab.host(hostName);
    await Promise.allSettled([...names].map((name) => host.closeSession(name)));
  }
}

/** Playwright's `expect` with labwright's result matchers. */
export const expect = baseExpect.extend(labwrightMatchers);

/** The lock name that gives a test exclusive use of a host across workers. */
export function hostLock(name: string): string {
  return `labwright-host:${name}`;
}

/**
 * Test details giving a test exclusive use of hosts: a Playwright lock per host (no other
 * test of this run holding it runs at the same time) and a lease on all of them, taken before
 * `host`, `remote` or `dut` is handed to the test, so it also holds across `--shard` runners
 * and machines sharing the lab's lease store (see leases.ts). Works on describe blocks too.
 *
 * ```ts
 * test('reboots the board', exclusive('dut1'), async ({ host }) => { ... });
 * ```
 */
export function exclusive(...hosts: string[]): { lock: string[]; annotation: { type: string; description: string }[] } {
  return { lock: hosts.map(hostLock), annotation: [{ type: EXCLUSIVE_ANNOTATION, description: hosts.join(',') }] };
}
