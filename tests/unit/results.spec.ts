import { expect, test } from '@playwright/test';

import { CommandResult, type CommandStatus, RunResult } from '../../src/host/results.js';

const result = (status: CommandStatus, output = '', exitCode: number | null = status === 'success' ? 0 : 1) =>
  new CommandResult({ host: 'h', session: 'default', protocol: 'local', command: 'c', output, exitCode, status, durationMs: 1, timedOut: false });

test('aggregate status is the worst status', () => {
  expect(new RunResult([result('success'), result('success')]).status).toBe('success');
  expect(new RunResult([result('success'), result('skipped')]).status).toBe('skipped');
  expect(new RunResult([result('skipped'), result('failed')]).status).toBe('failed');
  expect(new RunResult([result('failed'), result('error', '', null)]).status).toBe('error');
  expect(new RunResult([]).ok).toBe(false);
});

test('combined output, last, only and iteration', () => {
  const run = new RunResult([result('success', 'a'), result('success', 'b\n'), result('skipped')]);
  expect(run.output).toBe('a\nb\n');
  expect(run.last.status).toBe('skipped');
  expect([...run].length).toBe(3);
  expect(() => run.only).toThrow(/3 commands/);
  expect(new RunResult([result('failed')]).only.exitCode).toBe(1);
  expect(run.firstFailure?.status).toBe('skipped');
});
