/**
 * `labwright console` and `labwright power` as subprocesses on a real QEMU board: typing on
 * its serial console and reading the answer, the console held against another user while
 * attached, and the QEMU power driver switching the board, then waiting until it is back.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { type PoweredBoard, poweredBoardHost, startPoweredBoard } from '../../fixtures/qemu/poweredBoard.js';
import { defineLab } from '../../src/config/defineLab.js';
import { Lab } from '../../src/host/lab.js';
import { CLI, runCliProcess } from '../helpers/cli.js';

test.describe.configure({ mode: 'default' });

let board: PoweredBoard;
const uptime = async () => Number((await board.host.exec('cut -d" " -f1 /proc/uptime')).output);
let labFile: string;
test.beforeAll(async () => {
  test.setTimeout(240_000);
  board = await startPoweredBoard({ name: 'cli' });
  // Logged in on the console, then let go: the command's own lab takes it over.
  await board.host.console.run('true');
  await board.host.console.close();
  mkdirSync(test.info().project.outputDir, { recursive: true });
  labFile = path.join(test.info().project.outputDir, 'cli-board.json');
  writeFileSync(labFile, JSON.stringify({ hosts: { board: poweredBoardHost(board.board) } }));
});
test.afterAll(async () => {
  await board?.close();
});

test('console: what stdin carries is typed on the console, and what the board answers is printed', async () => {
  const run = await runCliProcess(['-l', labFile, 'console', 'board', '--linger', '1500'], { stdin: 'echo "cli-$((6*7))"\n' });
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/^cli-42\r?$/m);
});

test('console: while a command holds it, another user of the console waits, then gets a clear error', async () => {
  const child = spawn(CLI[0]!, [...CLI.slice(1), '-l', labFile, 'console', 'board', '--linger', '0'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LABWRIGHT_LAB: '' },
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  let printed = '';
  child.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  child.stdin.write('echo "held-$((6*7))"\n');
  // Its answer on the console proves the command holds it.
  await expect.poll(() => printed, { timeout: 60_000 }).toMatch(/^held-42\r?$/m);
  const other = new Lab(
    defineLab({ hosts: { board: poweredBoardHost(board.board, { console: { transport: 'tcp', port: board.board.consolePort, claimTimeout: 1_000 } }) } }),
  );
  try {
    const refused = await other
      .remote('board')
      .console.send('\n')
      .then(
        () => undefined,
        (error: unknown) => error as Error,
      );
    expect(refused?.message).toMatch(/^board \(console\): /);
    expect(refused?.message).toMatch(/another|held|busy/i);
  } finally {
    await other.close();
  }
  child.stdin.end();
  expect(await exited).toBe(0);
});

test('power: state, then a cycle with --wait brings the board back with a new boot; errors name the host', async () => {
  const state = await runCliProcess(['-l', labFile, 'power', 'board', 'state']);
  expect(state).toMatchObject({ code: 0, stdout: expect.stringMatching(/^board: on \(.+\)\n$/) });

  const before = await uptime();
  const cycled = await runCliProcess(['-l', labFile, 'power', 'board', 'cycle', '--wait', '--timeout', '120000'], { timeoutMs: 180_000 });
  expect(cycled.code, cycled.stderr).toBe(0);
  expect(cycled.stdout).toMatch(/^board: cycle done, power on \(.+\)\nboard: up after .+\n$/);
  // A fresh boot: the uptime starts again.
  expect(await uptime()).toBeLessThan(before);

  const wrong = await runCliProcess(['-l', labFile, 'power', 'board', 'toggle']);
  expect(wrong.code).toBe(2);
  expect(wrong.stderr).toMatch(/unknown power action "toggle": use on, off, cycle, state/);
});
