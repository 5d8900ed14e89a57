/** The CLI's progress display and text formatting. */
import { expect, test } from '@playwright/test';

import { formatBytes, formatClock, formatTable } from '../../src/cli/format.js';
import { ProgressReporter } from '../../src/cli/progress.js';

function sink(columns?: number) {
  const chunks: string[] = [];
  return { chunks, out: { write: (text: string) => chunks.push(text) > 0, columns } as unknown as NodeJS.WritableStream & { columns?: number } };
}

test('a bar redrawn in place on a terminal: bytes, rate, ETA; at most one redraw per interval; finished by a newline', () => {
  const { chunks, out } = sink(100);
  let now = 0;
  const progress = new ProgressReporter('put fw.bin', { mode: 'bar', out, now: () => now });
  progress.update(0, 10 * 1024 * 1024);
  now = 50;
  progress.update(1024 * 1024, 10 * 1024 * 1024); // within 100 ms of the last draw: not drawn
  now = 1_000;
  progress.update(5 * 1024 * 1024, 10 * 1024 * 1024);
  now = 2_000;
  progress.update(10 * 1024 * 1024, 10 * 1024 * 1024);
  progress.finish();
  expect(chunks).toHaveLength(5);
  expect(chunks[1]).toBe('\rput fw.bin [############------------]  50% 5.0 MiB/10.0 MiB 5.0 MiB/s ETA 0:01\x1b[K');
  expect(chunks[3]).toBe('\rput fw.bin [########################] 100% 10.0 MiB/10.0 MiB 5.0 MiB/s ETA 0:00\x1b[K');
  expect(chunks[4]).toBe('\n');
});

test('plain lines for logs, one per interval, no carriage returns; a narrow terminal gets the bar without its label', () => {
  const { chunks, out } = sink();
  let now = 0;
  const progress = new ProgressReporter('get log.tar', { mode: 'plain', out, now: () => now, plainInterval: 2_000 });
  for (now = 0; now <= 5_000; now += 500) progress.update(now * 1000, 5_000_000);
  progress.finish();
  expect(chunks).toEqual([
    'get log.tar: 0% 0 B/4.8 MiB 0 B/s ETA ?\n',
    'get log.tar: 40% 1.9 MiB/4.8 MiB 976.6 KiB/s ETA 0:03\n',
    'get log.tar: 80% 3.8 MiB/4.8 MiB 976.6 KiB/s ETA 0:01\n',
  ]);
  const narrow = sink(40);
  new ProgressReporter('put a-very-long-file-name.bin', { mode: 'bar', out: narrow.out, now: () => 1_000 }).update(10, 100);
  expect(narrow.chunks[0]!.replace('\x1b[K', '').length).toBeLessThanOrEqual(40);
  expect(narrow.chunks[0]).toMatch(/^\r\[##-+\]/);
  const none = sink();
  new ProgressReporter('x', { mode: 'none', out: none.out }).update(1, 2);
  expect(none.chunks).toEqual([]);
});

test('sizes, clocks and tables', () => {
  expect([0, 1023, 1024, 1536, 10 * 1024 ** 3].map(formatBytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '10.0 GiB']);
  expect([0, 7, 62, 3723].map(formatClock)).toEqual(['0:00', '0:07', '1:02', '1:02:03']);
  expect(
    formatTable(
      [
        ['✔', 'auth', 'as lab'],
        ['✘', 'host key known', 'not in known_hosts'],
      ],
      '  ',
    ),
  ).toBe('  ✔  auth            as lab\n  ✘  host key known  not in known_hosts');
});
