/**
 * Console text handling without a board: kernel lines taken out of a byte stream split at
 * every position, and the console log's line assembly (timestamps, partial lines, masking).
 */
import { expect, test } from '@playwright/test';

import { ConsoleLog } from '../../src/host/consoleLog.js';
import { type LabEvent, LabEvents } from '../../src/host/events.js';
import { KernelLineFilter } from '../../src/session/kernelLines.js';
import { registerSecret } from '../../src/util/secrets.js';

function filterAll(chunks: string[]): { output: string; kernel: string[] } {
  const kernel: string[] = [];
  const filter = new KernelLineFilter((line) => kernel.push(line));
  let output = '';
  for (const chunk of chunks) output += filter.push(Buffer.from(chunk, 'utf8')).toString('utf8');
  output += filter.flush().toString('utf8');
  return { output, kernel };
}

const STREAM = 'abc[   12.345678] usb 1-1: new device\r\ndef\n[ 1.5] not kernel\n[    3.000001] eth0: link up\r\nLWE_x:0\nü€ [x] done\n';

test('kernel lines are removed wherever the stream is split, other text is untouched', () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    for (const second of [cut, Math.min(STREAM.length, cut + 7)]) {
      const { output, kernel } = filterAll([STREAM.slice(0, cut), STREAM.slice(cut, second), STREAM.slice(second)]);
      expect(output, `split at ${cut}/${second}`).toBe('abcdef\n[ 1.5] not kernel\nLWE_x:0\nü€ [x] done\n');
      expect(kernel).toEqual(['[   12.345678] usb 1-1: new device', '[    3.000001] eth0: link up']);
    }
  }
});

test('lines in printk form that end with a bare LF (dmesg output) stay output', () => {
  const { output, kernel } = filterAll(['[    0.000000] Linux version 6.1\n', '[    0.1] x\n']);
  expect(output).toBe('[    0.000000] Linux version 6.1\n[    0.1] x\n');
  expect(kernel).toEqual([]);
});

test('a possible kernel line at the end of a chunk is held back only until it is decided', () => {
  const filter = new KernelLineFilter(() => {});
  expect(filter.push(Buffer.from('Password: [')).toString()).toBe('Password: ');
  expect(filter.push(Buffer.from('y/n]? ')).toString()).toBe('[y/n]? ');
  expect(filter.push(Buffer.from('[   1.0] partial')).toString()).toBe('');
  expect(filter.flush().toString()).toBe('[   1.0] partial');
});

function logOf(run: (log: ConsoleLog) => void): LabEvent[] {
  const events = new LabEvents();
  const seen: LabEvent[] = [];
  events.on((event) => seen.push(event));
  run(new ConsoleLog('board', events));
  return seen;
}

test('the console log has one timestamped line per console line, ANSI and CR removed, secrets masked', () => {
  registerSecret('console-secret-42');
  const seen = logOf((log) => {
    log.push(Buffer.from('U-Boot 2023\r\n\x1b[1mbold\x1b[0m line'), 1_000);
    log.push(Buffer.from(' continues\r\npassword console-secret-42\r\n'), 2_000);
    log.note('console lost (reset)');
  });
  const lines = seen.filter((event) => event.type === 'console').map((event) => event.type === 'console' && [event.time, event.line, event.partial]);
  expect(lines).toEqual([
    [1_000, 'U-Boot 2023', false],
    [1_000, 'bold line continues', false],
    [2_000, 'password ******', false],
    [expect.any(Number), '--- console lost (reset)', false],
  ]);
});

test('an open line (a prompt) is shown after a quiet moment and replaced when it ends', async () => {
  const seen: LabEvent[] = [];
  const events = new LabEvents();
  events.on((event) => seen.push(event));
  const log = new ConsoleLog('board', events);
  log.push(Buffer.from('=> '), 1);
  await new Promise((resolve) => setTimeout(resolve, 400));
  log.push(Buffer.from('version\r\n'), 2);
  const consoleEvents = seen.filter((event) => event.type === 'console');
  expect(consoleEvents.map((event) => event.type === 'console' && [event.line, event.partial])).toEqual([
    ['=> ', true],
    ['=> version', false],
  ]);
  expect(new Set(consoleEvents.map((event) => event.type === 'console' && event.lineId)).size).toBe(1);
});
