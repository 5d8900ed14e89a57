/** The OpenSSH client as the benchmark's reference: a ControlMaster connection, ssh, sftp and scp over it. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Runs a program; rejects on a non-zero exit with its stderr. */
export function run(program: string, args: string[], input?: string, env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    // A program that exits before reading its input (a refused session) closes the pipe:
    // the write fails with EPIPE, and the exit code above says what happened.
    child.stdin.on('error', () => {});
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${program} ${args.join(' ')} exited ${code}: ${err.trim()}`))));
    child.stdin.end(input ?? '');
  });
}

export interface OpenSshTarget {
  address: string;
  port: number;
  user: string;
  key: string;
  knownHosts: string;
}

/** An OpenSSH ControlMaster connection to the target, for `ssh -S` and `sftp`/`scp -o ControlPath`. */
export class OpenSshMaster {
  readonly socket = path.join(mkdtempSync(path.join(os.tmpdir(), 'lw-bench-cm-')), 'cm.sock');

  constructor(readonly target: OpenSshTarget) {}

  /** Options shared by ssh, sftp and scp. */
  options(): string[] {
    const t = this.target;
    return [
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-i',
      t.key,
      '-o',
      `UserKnownHostsFile=${t.knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `ControlPath=${this.socket}`,
    ];
  }

  get destination(): string {
    return `${this.target.user}@${this.target.address}`;
  }

  async start(): Promise<void> {
    await run('ssh', [...this.options(), '-p', String(this.target.port), '-o', 'ControlMaster=yes', '-o', 'ControlPersist=600', '-fN', this.destination]);
  }

  /** `ssh host <command>` over the master. */
  ssh(command: string): Promise<string> {
    return run('ssh', [...this.options(), '-p', String(this.target.port), this.destination, command]);
  }

  /** An sftp batch over the master. */
  sftp(batch: string): Promise<string> {
    return run('sftp', [...this.options(), '-P', String(this.target.port), '-b', '-', this.destination], batch);
  }

  /** scp over the master (`-O`: the classic protocol, like labwright's scp). */
  scp(from: string, to: string): Promise<string> {
    return run('scp', [...this.options(), '-O', '-P', String(this.target.port), from, to]);
  }

  async stop(): Promise<void> {
    await run('ssh', [...this.options(), '-p', String(this.target.port), '-O', 'exit', this.destination]).catch(() => {});
  }
}
