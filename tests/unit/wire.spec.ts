/** What is typed into shells: every command survives the trip through real sh, dash and bash exactly. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import { expect, test } from '@playwright/test';

import { assignmentLines, MarkerFactory, parseFamily } from '../../src/session/wire.js';

const shells = ['/bin/sh', '/bin/bash', '/bin/dash'].filter((shell) => existsSync(shell));

function randomCommand(seed: number): string {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
  const pool = ["'", '"', '\\', '$', '`', '\n', '\t', '\x03', '\x1b', ' ', 'a', 'é', '€', '😀', '!', '#', ';', '&', '|', '*', '%', 'z', '\x7f'];
  let text = '';
  const length = next() % 600;
  for (let i = 0; i < length; i++) text += pool[next() % pool.length];
  return text;
}

/** A marker factory set to the family `shell` reports through the opening probe. */
function familyOf(shell: string): MarkerFactory {
  const factory = new MarkerFactory();
  const markers = factory.forNonce('0');
  const printed = execFileSync(shell, ['-c', factory.familyProbeLine(markers)]).toString('latin1');
  const at = printed.indexOf(markers.recovery.toString());
  expect(at, printed).toBeGreaterThanOrEqual(0);
  factory.family = parseFamily(printed.slice(at + markers.recovery.length).trim());
  return factory;
}

test('the opening probe tells bash from POSIX shells', () => {
  expect(familyOf('/bin/bash').family).toBe('bash');
  expect(familyOf('/bin/dash').family).toBe('posix');
});

test('assignment lines rebuild any command exactly and stay under the line limit', () => {
  const samples = [
    'echo simple',
    "it's",
    'x'.repeat(5000),
    'line1\nline2\n\nline4\n',
    'tab\there',
    ...Array.from({ length: 40 }, (_, i) => randomCommand(i + 1)),
  ];
  // Checked in plain code and asserted once: thousands of expect() calls would each become a report step.
  const problems: string[] = [];
  for (const shell of shells) {
    for (const command of samples) {
      const factory = familyOf(shell);
      const lines = assignmentLines(command, 128, factory.family);
      const tooLong = lines.find((line) => Buffer.byteLength(line) > 128);
      if (tooLong) problems.push(`line over 128 bytes: ${JSON.stringify(tooLong)}`);
      const untypeable = lines.find((line) => /[\x00-\x09\x0b-\x1f\x7f]/.test(line));
      if (untypeable) problems.push(`control character typed raw: ${JSON.stringify(untypeable)}`);
      const script = [...factory.setupLines({ pty: false }), ...lines, 'printf %s "$__lw_c"'].join('\n');
      const rebuilt = execFileSync(shell, ['-c', script]).toString('utf8');
      if (rebuilt !== command) problems.push(`${shell} rebuilt ${JSON.stringify(rebuilt).slice(0, 80)} from ${JSON.stringify(command).slice(0, 80)}`);
    }
  }
  expect(problems).toEqual([]);
  expect(shells.length).toBeGreaterThanOrEqual(2);
});

test('a short single-line command is typed as one line', () => {
  expect(assignmentLines('echo hi', 512)).toEqual(["__lw_c='echo hi'"]);
});

test('NUL cannot be typed and is refused', () => {
  expect(() => assignmentLines('a\0b', 512)).toThrow(/NUL/);
});

test('typed lines never contain the markers they make the shell print', () => {
  const factory = new MarkerFactory();
  const markers = factory.next();
  const typed = factory.runLine(markers) + factory.recoveryLine(markers);
  for (const marker of [markers.start, markers.end, markers.recovery]) expect(typed).not.toContain(marker.toString());
  const printed = execFileSync('/bin/sh', ['-c', `__lw_c='(exit 3)'; ${factory.runLine(markers)}`]).toString();
  expect(printed).toBe(`${markers.start}\n\n${markers.end}3\t\r\n`);
});

test('nonces never repeat within a session and session ids differ', () => {
  const factory = new MarkerFactory();
  const nonces = new Set(Array.from({ length: 1000 }, () => factory.next().nonce));
  expect(nonces.size).toBe(1000);
  expect(new MarkerFactory().sessionId).not.toBe(factory.sessionId);
});
