import { expect, test } from '@playwright/test';

import { NO_TUNING_ENV, workerNodeOptions } from '../../src/playwright/globalSetup.js';

test('workers get a larger young generation unless the user chose one or opted out', () => {
  expect(workerNodeOptions('')).toBe('--max-semi-space-size=64');
  expect(workerNodeOptions('--enable-source-maps')).toBe('--enable-source-maps --max-semi-space-size=64');
  expect(workerNodeOptions('--max-semi-space-size=16')).toBe('--max-semi-space-size=16');
  process.env[NO_TUNING_ENV] = '1';
  try {
    expect(workerNodeOptions('--enable-source-maps')).toBe('--enable-source-maps');
  } finally {
    delete process.env[NO_TUNING_ENV];
  }
});
