/**
 * The example lab: four boards and a bastion. Where they are comes from the environment,
 * as in a real CI job (the example suite's global setup starts them in containers and
 * exports these variables); secrets never appear in this file.
 */
import { defineLab, env } from 'labwright';

/** `host:port` from an environment variable, with a clear message when it is missing. */
function endpoint(name: string): { address: string; port: number } {
  const value = process.env[name];
  const match = value ? /^(.+):(\d+)$/.exec(value) : null;
  if (!match) throw new Error(`lab.config.ts: set ${name} to host:port (the example suite's global setup does)`);
  return { address: match[1]!, port: Number(match[2]) };
}

const optional = (name: string) => (process.env[name] ? endpoint(name) : undefined);
const ssh = optional('LAB_SSH_BOARD');
const telnet = optional('LAB_TELNET_BOARD');
const bastion = optional('LAB_BASTION');
const hidden = optional('LAB_HIDDEN_BOARD');
const embedded = optional('LAB_EMBEDDED_BOARD');
const qemuConsole = optional('LAB_QEMU_CONSOLE');
const qemuSsh = optional('LAB_QEMU_SSH');

const users = { lab: { password: env('LAB_PASSWORD'), privateKey: process.env.LAB_KEY } };

export default defineLab({
  defaults: {
    commandTimeout: 20_000,
    ssh: { knownHosts: [process.env.LAB_KNOWN_HOSTS ?? '~/.ssh/known_hosts'], hostKeyPolicy: 'strict' },
  },
  local: { shell: { init: ['export LABWRIGHT_EXAMPLE=1'] } },
  hosts: {
    ...(ssh && {
      'ssh-board': { address: ssh.address, ssh: { port: ssh.port }, users, tags: ['ssh'] },
    }),
    ...(telnet && {
      'telnet-board': {
        address: telnet.address,
        term: 'telnet' as const,
        transfer: 'ftp' as const,
        telnet: { port: telnet.port },
        ftp: { port: Number(process.env.LAB_TELNET_BOARD_FTP) },
        users,
        tags: ['telnet-only'],
      },
    }),
    ...(bastion && { bastion: { address: bastion.address, ssh: { port: bastion.port }, users } }),
    ...(hidden && {
      'hidden-board': {
        address: hidden.address,
        hop: 'bastion',
        ssh: { port: hidden.port },
        ftp: { port: Number(process.env.LAB_HIDDEN_BOARD_FTP) },
        users,
        tags: ['behind-bastion'],
      },
    }),
    // Dropbear, BusyBox ash as the login shell, SFTP through OpenSSH's sftp-server.
    ...(embedded && {
      'embedded-board': { address: embedded.address, ssh: { port: embedded.port }, users, tags: ['embedded', 'busybox'] },
    }),
    // A board whose shell is its serial console (U-Boot, then Linux), with SSH for exec.
    ...(qemuConsole &&
      qemuSsh && {
        'qemu-board': {
          address: qemuSsh.address,
          term: 'console' as const,
          console: { transport: 'tcp' as const, address: qemuConsole.address, port: qemuConsole.port },
          ssh: { port: qemuSsh.port, knownHosts: [process.env.LAB_QEMU_KNOWN_HOSTS ?? '~/.ssh/known_hosts'] },
          users: { root: { password: env('LAB_QEMU_PASSWORD') } },
          // Its power switch: QEMU's monitor (as a PDU would be: { pdu: 'rack1', outlet: 3 }).
          ...(process.env.LAB_QEMU_QMP && { power: { driver: 'qemu' as const, socket: process.env.LAB_QEMU_QMP } }),
          tags: ['serial-console', 'u-boot'],
        },
      }),
  },
});
