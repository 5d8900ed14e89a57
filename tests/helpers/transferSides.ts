/**
 * The far side of a transfer, looked at without labwright: a shell as the device user in the
 * container (docker exec), or on the runner for the local host. Tests check with it where
 * files landed, their modes and contents, and that no partial file is left.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';

import type { LabRole, StartedLab } from './containerLab.js';

export interface FarSide {
  /** Runs `sh -c command` there; stdout trimmed. */
  sh(command: string): Promise<{ code: number; stdout: string }>;
  /** The login directory of the user transfers run as. */
  home: string;
  /** A fresh scratch directory path there (not created). */
  scratch(label: string): string;
}

/** Lab host names of labInput() and the container role behind each. */
const ROLES: Record<string, LabRole> = { target: 'target', telnet: 'telnetOnly', inner: 'inner' };

/** The far side of `host` (`local`, or a labInput() host name) of `started`. */
export function farSide(started: StartedLab, host: string): FarSide {
  const scratchName = (base: string, label: string) => `${base}/lw-${label}-${randomBytes(4).toString('hex')}`;
  if (host === 'local') {
    return {
      home: os.homedir(),
      sh: async (command) => {
        const result = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
        return { code: result.status ?? -1, stdout: result.stdout.trim() };
      },
      scratch: (label) => scratchName(os.tmpdir(), label),
    };
  }
  const role = ROLES[host];
  if (!role) throw new Error(`farSide: no container behind host ${host}`);
  const user = started.credentials.user.username;
  return {
    home: `/home/${user}`,
    sh: async (command) => {
      const result = await started.host(role).exec(command, { user, timeoutMs: 30_000 });
      return { code: result.exitCode, stdout: result.stdout.trim() };
    },
    scratch: (label) => scratchName('/tmp', label),
  };
}

/** Names under `dir` (recursively) that look like labwright's partial files. */
export async function partialFiles(side: FarSide, dir: string): Promise<string[]> {
  const { stdout } = await side.sh(`find ${dir} -name '*.lw-*.part' 2>/dev/null`);
  return stdout ? stdout.split('\n') : [];
}
