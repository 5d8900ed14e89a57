/**
 * Secrets never leave labwright in any quoting: masked before quoting, escaping or cutting,
 * in error messages, in events (command-end included) and in transcripts.
 */
import { expect, test } from '@playwright/test';

import { quoteForMessage, registerSecret } from '../../src/util/secrets.js';
import { testLab } from '../helpers/labs.js';

/** A secret with characters that JSON quoting escapes. */
const AWKWARD = 'pa"ss\\w0rd-7731';

/** Every way the secret could show up in a text: raw, JSON-escaped, or a long part of it. */
function leaks(text: string, secret: string): string[] {
  const forms = [secret, JSON.stringify(secret).slice(1, -1), secret.slice(3), secret.slice(0, -3)];
  return forms.filter((form) => text.includes(form));
}

test('quoteForMessage masks before quoting and before cutting', () => {
  registerSecret(AWKWARD);
  const quoted = quoteForMessage(`before ${AWKWARD} after`, 500);
  expect(leaks(quoted, AWKWARD)).toEqual([]);
  expect(quoted).toBe('"before ****** after"');
  // A cut that would start inside the secret must not reveal its rest.
  const text = `${'x'.repeat(50)}${AWKWARD}tail`;
  for (let max = 5; max < 30; max++) expect(leaks(quoteForMessage(text, max), AWKWARD)).toEqual([]);
});

test('an expect timeout shows the tail of the output with a quote-bearing secret masked', async () => {
  registerSecret(AWKWARD);
  const { lab } = testLab();
  const local = lab.host('local');
  await local.send(`printf '%s\\n' '${AWKWARD.replace(/'/g, `'\\''`)}'; printf 'waiting... '\n`);
  const error = await local.expect(/never-printed/, { timeout: 500 }).catch((e: Error) => e);
  expect(error).toBeInstanceOf(Error);
  const message = (error as Error).message;
  expect(message).toMatch(/last output: ".*\*\*\*\*\*\*.*waiting\.\.\. "/s);
  expect(leaks(message, AWKWARD)).toEqual([]);
  await lab.close();
});

test('events mask secrets in every field, command-end results included; the caller keeps the exact output', async () => {
  registerSecret(AWKWARD);
  const { lab, events } = testLab();
  const local = lab.host('local');
  const quotedSecret = `'${AWKWARD.replace(/'/g, `'\\''`)}'`;
  const r = await local.run(`printf '%s\\n' ${quotedSecret}; echo ${quotedSecret} >&2; exit 3`);
  expect(r.last.output).toContain(AWKWARD);
  const e = await local.exec(`printf '%s' ${quotedSecret}; printf '%s' ${quotedSecret} >&2; false`);
  expect(e.output).toBe(AWKWARD);
  expect(e.stderr).toBe(AWKWARD);
  const text = JSON.stringify(events, (_key, value: unknown) => (Buffer.isBuffer(value) ? value.toString('utf8') : value));
  expect(leaks(text, AWKWARD)).toEqual([]);
  const ends = events.filter((event) => event.type === 'command-end');
  expect(ends).toHaveLength(2);
  for (const end of ends) {
    if (end.type !== 'command-end') continue;
    expect(leaks(end.result.output + (end.result.stderr ?? '') + end.result.command + end.result.outputBytes.toString('utf8'), AWKWARD)).toEqual([]);
  }
  await lab.close();
});
