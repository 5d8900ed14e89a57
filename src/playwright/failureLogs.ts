/**
 * Logs on failure: when a test fails, the commands and files each host it used lists in
 * `logs` (dmesg, `journalctl -b`, /var/log/messages, an application log) are collected on
 * their own exec channels (a hung shell does not stop them), each bounded by its timeout,
 * secrets masked, and attached to the report as `logs: <host>`. Collecting never fails the
 * test a second time: what could not be collected is said in the attachment.
 */
import type { TestInfo } from '@playwright/test';

import type { Host } from '../host/host.js';
import type { Lab } from '../host/lab.js';
import { messageOf } from '../util/errors.js';
import { redact } from '../util/secrets.js';
import { shellQuote } from '../util/shellQuote.js';
import { formatDuration, withTimeout } from '../util/time.js';

/** Annotation type that keeps a failing test from collecting logs. */
export const NO_LOGS = 'labwright:no-logs';

/**
 * Test details that turn log collection off for one test:
 * `test('flashes', noLogs, async ({ dut }) => { ... })`.
 */
export const noLogs = { annotation: { type: NO_LOGS, description: 'labwright does not collect failure logs for this test' } };

/** The end of a text, at most `maxBytes` bytes of it, with a note of what was left out. */
function tail(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return text;
  return `[... ${bytes.length - maxBytes} earlier bytes left out]\n${bytes.subarray(bytes.length - maxBytes).toString('utf8')}`;
}

/** Collects one host's logs as text; never throws. */
export async function collectHostLogs(host: Host): Promise<string | undefined> {
  const { commands, files, timeout, maxBytes } = host.config.logs;
  const items = [
    ...commands.map((command) => ({ title: `$ ${command}`, command, file: false })),
    // The size first (a line of its own), then the end of the file.
    ...files.map((file) => ({ title: `== ${file}`, command: `wc -c < ${shellQuote(file)} && tail -c ${maxBytes} ${shellQuote(file)}`, file: true })),
  ];
  if (items.length === 0) return undefined;
  const sections: string[] = [];
  const work = (async () => {
    for (const item of items) {
      const started = Date.now();
      try {
        const result = await host.exec(item.command, { timeout });
        let output = result.output;
        let outcome = result.timedOut
          ? `TIMED OUT after ${formatDuration(timeout)}`
          : result.exitCode !== null
            ? `exit ${result.exitCode}`
            : `error: ${result.error ?? 'no exit status'}`;
        const size = item.file && result.exitCode === 0 ? /^\s*(\d+)\n/.exec(output) : null;
        if (size) {
          output = output.slice(size[0].length);
          const bytes = Number(size[1]);
          outcome = bytes > maxBytes ? `${bytes} bytes, the last ${maxBytes} shown` : `${bytes} bytes`;
        }
        const stderr = result.stderr ? `\n[stderr]\n${tail(result.stderr, maxBytes)}` : '';
        sections.push(`${item.title}  → ${outcome} · ${formatDuration(Date.now() - started)}\n${tail(output, maxBytes)}${stderr}`);
      } catch (error) {
        // The host cannot run anything (unreachable, refused): the other items would fail the same way.
        sections.push(`${item.title}  → not collected: ${messageOf(error)}`);
        return;
      }
    }
  })();
  // Connecting may need its own bound on top of the items'.
  const bound = timeout * (items.length + 1);
  await withTimeout(work, bound, () => new Error('bound')).catch(() => sections.push(`(stopped after ${formatDuration(bound)}; the rest was not collected)`));
  return redact(`logs of ${host.name}, collected after the test failed\n\n${sections.join('\n\n')}\n`);
}

/** Whether logs should be collected for this test: it failed and did not opt out. */
export function wantsLogs(testInfo: TestInfo, enabled: boolean): boolean {
  return enabled && testInfo.status !== testInfo.expectedStatus && testInfo.status !== 'skipped' && !testInfo.annotations.some((a) => a.type === NO_LOGS);
}

/** Collects and attaches the logs of `hosts` (in parallel); never throws. */
export async function attachFailureLogs(lab: Lab, hosts: readonly string[], testInfo: TestInfo): Promise<void> {
  await Promise.all(
    hosts.map(async (name) => {
      try {
        const text = await collectHostLogs(lab.host(name));
        if (text) await testInfo.attach(`logs: ${name}`, { body: text, contentType: 'text/plain' });
      } catch {
        // Collecting logs must never fail the test a second time.
      }
    }),
  );
}
