import { expect, test } from '@playwright/test';

import { markerPrefixLength } from '../../src/session/shellSession.js';
import { cleanText, LineSplitter, TextCleaner } from '../../src/session/text.js';

test('cleanText strips ANSI sequences and CRLF, keeps lone CR', () => {
  expect(cleanText('\x1b[31mred\x1b[0m\r\nnext\rprogress\x1b]0;title\x07')).toBe('red\nnext\rprogress');
});

test('TextCleaner handles UTF-8, CRLF and escape sequences split across chunks', () => {
  const input = Buffer.from('café €\r\n\x1b[1;32mgreen\x1b[0m😀\r\nend');
  for (let split = 1; split < input.length; split++) {
    const cleaner = new TextCleaner();
    const text = cleaner.push(input.subarray(0, split)) + cleaner.push(input.subarray(split)) + cleaner.flush();
    expect(text, `split at ${split}`).toBe('café €\ngreen😀\nend');
  }
});

test('LineSplitter emits complete lines and flushes the last partial one', () => {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  splitter.push('a\nb');
  splitter.push('c\n\nd');
  splitter.flush();
  expect(lines).toEqual(['a', 'bc', '', 'd']);
});

test('only a tail that can start an end marker is held back', () => {
  const marker = Buffer.from('LWE_abc_1xy:');
  expect(markerPrefixLength(Buffer.from('Password: '), marker)).toBe(0);
  expect(markerPrefixLength(Buffer.from('out\n'), marker)).toBe(1);
  expect(markerPrefixLength(Buffer.from('out\r\nLWE_a'), marker)).toBe(7);
  expect(markerPrefixLength(Buffer.from('LW'), marker)).toBe(2);
});

test('a line can be ended early; its newline arriving later is not a second line', () => {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  splitter.push('first');
  splitter.endLineEarly();
  splitter.push('\nsecond\n');
  splitter.push('third');
  splitter.endLineEarly();
  splitter.flush();
  expect(lines).toEqual(['first', 'second', 'third']);
});
