/**
 * Waiting until a device is back: a list of checks (SSH accepting a login, the shell
 * answering; a console's login prompt where the host has one) tried in order, again every
 * poll interval until all pass or the bound is reached. Progress goes to the transcript
 * when the reason changes and every few seconds (`waiting for dut1: ssh refused, 6 s`).
 */
import { AbortedError, ConnectionError, HostUnavailableError, LabwrightError, messageOf } from '../util/errors.js';
import { abortReason, anySignal, formatDuration, sleep } from '../util/time.js';

/** One thing that must work for the host to count as up. */
export interface UpCheck {
  /** Short name for progress lines: `ssh`, `shell`, `console`. */
  readonly name: string;
  /** Throws (with the reason) while the check fails; `timeout` is what is left of the wait. */
  run(timeout: number, signal: AbortSignal): Promise<void>;
}

/** How long the wait took, and when each check first passed (ms since the wait began). */
export interface UpTimings {
  durationMs: number;
  attempts: number;
  passedAt: Record<string, number>;
}

export interface WaitOptions {
  host: string;
  checks: readonly UpCheck[];
  timeout: number;
  pollInterval: number;
  signal: AbortSignal | undefined;
  /** Progress lines for the transcript. */
  progress: (text: string) => void;
}

/** Report at least this often while the reason stays the same. */
const PROGRESS_EVERY_MS = 5_000;

/** A failure in a few words for a progress line: `ssh refused`, `shell: timed out`. */
export function shortReason(check: string, error: unknown): string {
  if (error instanceof ConnectionError) return `${check} ${error.kind === 'closed' ? 'closed the connection' : error.kind}`;
  const text = error instanceof LabwrightError ? error.detail : messageOf(error);
  return `${check}: ${text.length > 100 ? `${text.slice(0, 97)}...` : text}`;
}

/** Resolves once every check passes; throws a HostUnavailableError (`down`) naming the last failure when `timeout` runs out. */
export async function waitUntilUp(options: WaitOptions): Promise<UpTimings> {
  const started = Date.now();
  const deadline = started + options.timeout;
  const passedAt: Record<string, number> = {};
  const passed = new Set<UpCheck>();
  let attempts = 0;
  let last = '';
  let reportedAt = 0;
  let reported = '';
  for (;;) {
    attempts++;
    let failure: string | undefined;
    for (const check of options.checks) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const bound = AbortSignal.timeout(left);
      try {
        await check.run(left, anySignal(options.signal, bound)!);
        passedAt[check.name] ??= Date.now() - started;
        passed.add(check);
      } catch (error) {
        if (options.signal?.aborted) {
          throw new HostUnavailableError(
            'down',
            `waiting for ${options.host} was abandoned (${abortReason(options.signal)}); last: ${last || 'no check ran'}.`,
            { host: options.host },
          );
        }
        // A check cut by the end of the wait says only that; one that failed says why.
        failure = bound.aborted && error instanceof AbortedError ? `${check.name}: no answer` : shortReason(check.name, error);
        break;
      }
    }
    const now = Date.now();
    if (failure === undefined && passed.size === options.checks.length) return { durationMs: now - started, attempts, passedAt };
    last = failure ?? last;
    if (now >= deadline) {
      throw new HostUnavailableError('down', `${options.host} did not come back within ${formatDuration(options.timeout)}: ${last} (${attempts} attempts).`, {
        host: options.host,
        hint: 'Check the device (its console, its power); raise lifecycle.upTimeout if it needs longer to boot.',
      });
    }
    if (last !== reported || now - reportedAt >= PROGRESS_EVERY_MS) {
      options.progress(`waiting for ${options.host}: ${last}, ${Math.round((now - started) / 1000)} s`);
      reported = last;
      reportedAt = now;
    }
    try {
      await sleep(Math.min(options.pollInterval, deadline - now), options.signal);
    } catch {
      // The signal fired: the next round reports it.
    }
  }
}
