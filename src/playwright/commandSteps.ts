/**
 * Steps that tell a command's story in the HTML report without opening attachments: the
 * command's step (`host: command`) holds a child step with its outcome (`→ exit 3 · 12 ms`,
 * `→ TIMED OUT after 2.00 s`, `→ error: ...`) and child steps with the end of its output,
 * and a command that failed or timed out is marked failed in the steps tree (its step and
 * its outcome step carry an error) while the test goes on: `run()` reports failures in its
 * result, it does not throw. Labwright errors escaping a step are laid out for the report.
 *
 * Playwright 1.65's HTML report shows of a step its title, status icon, duration, an
 * attachment link and its child steps: child steps are what can show text inside a step.
 */
import { test as base } from '@playwright/test';

import type { StepRunner } from '../host/events.js';
import { CommandResult } from '../host/results.js';
import { redact } from '../util/secrets.js';
import { formatDuration } from '../util/time.js';
import { type Location, userCallSite } from './callSite.js';
import { layOutForReport } from './reportLayout.js';

/**
 * Output lines shown inside a command's step (the last ones); the rest is in the host's
 * transcript. Each line is a step, and a step costs about 0.25 ms of the test's time
 * (measured: 300 commands of 20 lines), so a command that succeeded shows fewer.
 */
export const STEP_OUTPUT_LINES = { succeeded: 5, failed: 20 };
/** Characters of one output line shown in a step title. */
const STEP_LINE_WIDTH = 200;

/** Thrown inside a command's step to mark it failed in the report; caught right outside it. */
class CommandStepFailure extends Error {
  constructor(readonly result: CommandResult) {
    super(outcomeTitle(result));
    this.name = 'CommandFailed';
  }
}

/** The title of a command's outcome step. */
export function outcomeTitle(result: CommandResult): string {
  const took = formatDuration(result.durationMs);
  if (result.status === 'skipped') return `→ skipped: ${redact(result.error ?? '')}`;
  if (result.timedOut) return `→ TIMED OUT after ${took}${result.error ? ` · ${redact(firstLine(result.error))}` : ''}`;
  if (result.aborted) return `→ ABORTED after ${took}${result.error ? `: ${redact(firstLine(result.error))}` : ''}`;
  if (result.exitCode === null) return `→ error after ${took}: ${redact(firstLine(result.error ?? 'no exit status'))}`;
  return `→ exit ${result.exitCode}${result.signal ? ` (signal ${result.signal})` : ''} · ${took}`;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!;
}

/** The output lines shown in the step: the last {@link STEP_OUTPUT_LINES}, and a note of how many more the transcript has. */
export function outputTitles(result: CommandResult): string[] {
  const shown = result.ok ? STEP_OUTPUT_LINES.succeeded : STEP_OUTPUT_LINES.failed;
  const cut = (line: string) => (line.length > STEP_LINE_WIDTH ? `${line.slice(0, STEP_LINE_WIDTH - 1)}…` : line);
  const lines = (text: string | undefined) => (text ? redact(text).replace(/\n$/, '').split('\n') : []);
  const out = lines(result.output).map((line) => `│ ${cut(line)}`);
  const err = lines(result.stderr).map((line) => `! ${cut(line)}`);
  const all = [...out, ...err];
  if (all.length <= shown) return all;
  const hidden = all.length - shown;
  return [`… ${hidden} earlier line(s) in the attachment "transcript: ${result.host}"`, ...all.slice(hidden)];
}

/** A no-op body for steps that only show text. */
const nothing = async () => {};

/** Adds the outcome and output steps under the current (command) step. */
async function showResult(result: CommandResult, location: Location | undefined): Promise<void> {
  const failed = result.status === 'failed' || result.status === 'error';
  const options = location ? { location } : { box: true };
  await base
    .step(
      outcomeTitle(result),
      async () => {
        if (failed) throw new CommandStepFailure(result);
      },
      options,
    )
    .catch((error: unknown) => {
      if (!(error instanceof CommandStepFailure)) throw error;
    });
  for (const title of outputTitles(result)) await base.step(title, nothing, options);
  if (failed) throw new CommandStepFailure(result);
}

/**
 * The step runner the fixtures install while a test runs: every host operation is a boxed
 * `test.step`; a command's step shows its outcome and output; errors get the report layout.
 */
export const reportingStep: StepRunner = async <T>(title: string, body: () => Promise<T>): Promise<T> => {
  let done: { value: T } | undefined;
  // The test's line, not labwright's, for the step and the steps inside it.
  const location = userCallSite();
  try {
    await base.step(
      title,
      async () => {
        let value: T;
        try {
          value = await body();
        } catch (error) {
          throw layOutForReport(error);
        }
        done = { value };
        if (value instanceof CommandResult) await showResult(value, location);
      },
      location ? { box: true, location } : { box: true },
    );
  } catch (error) {
    if (!(error instanceof CommandStepFailure) || !done) throw error;
  }
  return done!.value;
};
