/**
 * The device-side commands that signal a command's whole process tree, run here with the
 * runner's /bin/sh (dash on Debian) and /proc: a forked tree ends, other processes stay.
 */
import { execFileSync, spawn } from 'node:child_process';

import { expect, test } from '@playwright/test';

import { signalProcessTree, signalTaggedProcesses } from '../../src/util/processTree.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the runner's processes whose command line starts with `text`. */
function pidsWith(text: string): number[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null && match[2]!.startsWith(text))
    .map((match) => Number(match[1]));
}

/** Sleep durations no other process on the runner uses. */
function uniqueSleep(): string {
  return `4${Math.floor(Math.random() * 1e6)}`;
}

test('a tagged shell, its forked children and grandchildren are signalled; an untagged neighbour is not', async () => {
  const tag = `LWX_${Date.now().toString(36)}`;
  const base = uniqueSleep();
  // dash forks both sleeps: the shell, a subshell and two sleeps make the tree.
  const shell = spawn('/bin/sh', ['-c', `# ${tag}\n( sleep ${base}.1 ) & sleep ${base}.2; wait`], { stdio: 'ignore' });
  const neighbour = spawn('sleep', [`${base}.3`], { stdio: 'ignore' });
  try {
    await expect.poll(() => pidsWith(`sleep ${base}.`).length).toBe(3);
    execFileSync('/bin/sh', ['-c', signalTaggedProcesses(tag, 'KILL')]);
    await expect.poll(() => pidsWith(`sleep ${base}.1`).length + pidsWith(`sleep ${base}.2`).length).toBe(0);
    await expect.poll(() => alive(shell.pid!)).toBe(false);
    expect(alive(neighbour.pid!)).toBe(true);
  } finally {
    neighbour.kill();
    shell.kill('SIGKILL');
  }
});

test('signalling by pid takes the descendants along; nothing to signal is no error', async () => {
  const base = uniqueSleep();
  const shell = spawn('/bin/sh', ['-c', `sleep ${base}.1 & sleep ${base}.2; wait`], { stdio: 'ignore' });
  await expect.poll(() => pidsWith(`sleep ${base}.`).length).toBe(2);
  execFileSync('/bin/sh', ['-c', signalProcessTree([shell.pid!], 'TERM')]);
  await expect.poll(() => pidsWith(`sleep ${base}.`).length).toBe(0);
  expect(() => execFileSync('/bin/sh', ['-c', signalProcessTree([], 'TERM')])).not.toThrow();
  expect(() => execFileSync('/bin/sh', ['-c', signalTaggedProcesses('LWX_nobodyhasthis', 'TERM')])).not.toThrow();
});
