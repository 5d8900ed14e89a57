/** Command latency: the persistent shell and exec over SSH and telnet, against `ssh host true` over a ControlMaster socket. */
import type { Lab } from '../../src/host/lab.js';
import type { OpenSshMaster } from '../openssh.js';
import { median, type Row, row, timeRuns } from '../stats.js';

export async function latencySection(lab: Lab, master: OpenSshMaster): Promise<Row[]> {
  const target = lab.remote('target');
  const telnet = lab.remote('telnet');
  const shell = median(await timeRuns(500, () => target.run('true')));
  const exec = median(await timeRuns(200, () => target.exec('true')));
  const telnetShell = median(await timeRuns(300, () => telnet.run('true')));
  const telnetExec = median(await timeRuns(100, () => telnet.exec('true')));
  const ssh = median(await timeRuns(50, () => master.ssh('true')));
  console.log(
    `latency: ssh shell ${shell.toFixed(2)} ms, ssh exec ${exec.toFixed(2)} ms, telnet shell ${telnetShell.toFixed(2)} ms, telnet exec ${telnetExec.toFixed(2)} ms, OpenSSH ssh -S ${ssh.toFixed(2)} ms (medians)`,
  );
  return [
    row('latency', 'command on the persistent SSH shell', 'ms', shell, ssh, 'ssh -S cm host true', '>= 10x'),
    row('latency', 'exec on its own SSH channel', 'ms', exec, ssh, 'ssh -S cm host true', '>= 1x'),
    row('latency', 'command on the persistent telnet shell', 'ms', telnetShell, shell, 'labwright SSH shell'),
    row('latency', 'exec on the telnet shell pool', 'ms', telnetExec, exec, 'labwright SSH exec'),
  ];
}
