/** Command latency: the persistent shell and exec, against `ssh host true` over a ControlMaster socket. */
import type { Lab } from '../../src/host/lab.js';
import type { OpenSshMaster } from '../openssh.js';
import { median, row, timeRuns, type Row } from '../stats.js';

export async function latencySection(lab: Lab, master: OpenSshMaster): Promise<Row[]> {
  const target = lab.remote('target');
  const shell = median(await timeRuns(500, () => target.run('true')));
  const exec = median(await timeRuns(200, () => target.exec('true')));
  const ssh = median(await timeRuns(50, () => master.ssh('true')));
  console.log(`latency: shell ${shell.toFixed(2)} ms, exec ${exec.toFixed(2)} ms, ssh -S ${ssh.toFixed(2)} ms (medians)`);
  return [
    row('ssh', 'command on the persistent shell', 'ms', shell, ssh, 'ssh -S cm host true', '>= 10x'),
    row('ssh', 'exec on its own channel', 'ms', exec, ssh, 'ssh -S cm host true', '>= 1x'),
  ];
}
