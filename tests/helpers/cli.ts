/** Runs the labwright command as a subprocess (from the sources, through tsx), plain or on a pseudo-terminal. */
import { spawn } from 'node:child_process';
import path from 'node:path';

import { repoRoot } from './inlineTest.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

const MAIN = path.join(repoRoot, 'src/cli/main.ts');
/** `node --import tsx src/cli/main.ts`: the command as its bin runs it, compiled on the fly. */
export const CLI = [process.execPath, '--import', 'tsx', MAIN];

/** Runs `labwright ARGS` with no terminal (pipes), bounded by `timeoutMs`. */
export function runCliProcess(args: readonly string[], options: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(CLI[0]!, [...CLI.slice(1), ...args], {
      cwd: repoRoot,
      env: { ...process.env, LABWRIGHT_LAB: '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(options.stdin ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A step of a pseudo-terminal script (see tests/helpers/pty_run.py). */
export type PtyStep = { size: [cols: number, rows: number] } | { expect: string } | { send: string } | { sleep: number };

/** Runs `labwright ARGS` on a pseudo-terminal driven by `steps`; returns all it printed and its exit code. */
export function runCliOnPty(
  args: readonly string[],
  steps: readonly PtyStep[],
  options: { env?: Record<string, string> } = {},
): Promise<{ output: string; exit: number; error: string | null }> {
  return new Promise((resolve, reject) => {
    const helper = path.join(repoRoot, 'tests/helpers/pty_run.py');
    const child = spawn('python3', [helper, JSON.stringify(steps), '--', ...CLI, ...args], {
      cwd: repoRoot,
      env: { ...process.env, LABWRIGHT_LAB: '', TERM: 'xterm-256color', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout) as { output: string; exit: number; error: string | null });
      } catch {
        reject(new Error(`pty helper failed: ${stderr || stdout}`));
      }
    });
  });
}
