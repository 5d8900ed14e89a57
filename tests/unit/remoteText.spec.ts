/**
 * What labwright reads back from devices and writes for them: listening ports from ss,
 * netstat and /proc, telnet exec output split into stdout and stderr, exec scripts for env
 * and cwd, and loops in hop chains.
 */
import { expect, test } from '@playwright/test';

import { findHopCycle } from '../../src/config/hops.js';
import { execScript } from '../../src/host/execScript.js';
import { splitTelnetExec, telnetExecScript } from '../../src/host/telnetExec.js';
import { listeningPorts } from '../../src/transfer/nc.js';

test('listening ports from ss, netstat (GNU and BusyBox) and /proc/net/tcp', () => {
  const ss =
    'LISTEN 0      128          0.0.0.0:22        0.0.0.0:*\nLISTEN 0      5               [::]:2121           [::]:*\nESTAB  0      0        127.0.0.1:5000     127.0.0.1:40000\n';
  expect([...listeningPorts(ss)].sort()).toEqual([2121, 22]);
  const netstat =
    'Active Internet connections (only servers)\nProto Recv-Q Send-Q Local Address           Foreign Address         State\ntcp        0      0 0.0.0.0:21              0.0.0.0:*               LISTEN\ntcp        0      0 :::23                   :::*                    LISTEN\ntcp        0      0 10.0.0.2:22             10.0.0.1:5555           ESTABLISHED\n';
  expect([...listeningPorts(netstat)].sort()).toEqual([21, 23]);
  const proc =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n   1: 0100007F:9C40 0100007F:0016 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n';
  expect([...listeningPorts(proc)]).toEqual([22]);
  expect(listeningPorts('').size).toBe(0);
});

test('telnet exec output splits at its own separator only, with LF or CR LF line ends', () => {
  const token = 'abc123abc123';
  const out = Buffer.from(`out line\nLWSE_ffffffffffff\nmore\n\nLWSE_${token}\nerr line\n`);
  expect(splitTelnetExec(out, token)).toEqual({ stdout: Buffer.from('out line\nLWSE_ffffffffffff\nmore\n'), stderr: Buffer.from('err line\n') });
  const crlf = Buffer.from(`x\r\n\r\nLWSE_${token}\r\ne\r\n`);
  expect(splitTelnetExec(crlf, token).stderr.toString()).toBe('e\r\n');
  expect(splitTelnetExec(Buffer.from('no separator'), token)).toEqual({ stdout: Buffer.from('no separator'), stderr: Buffer.alloc(0) });
  // The separator is assembled by printf: the typed script never contains it.
  expect(telnetExecScript('echo hi', {}, token)).not.toContain(`LWSE_${token}`);
});

test('exec scripts export env and enter cwd; a missing cwd is told apart by a marker on stderr', () => {
  const prepared = execScript('make all', { env: { CC: "gcc -O2 'x'" }, cwd: '/opt/my build' }, 'dut', 'ssh');
  expect(prepared.script).toBe(
    `export CC='gcc -O2 '\\''x'\\'''\ncd -- '/opt/my build' 2>/dev/null || { printf '%s_%s\\n' LWNOCWD ${/LWNOCWD (\w+)/.exec(prepared.script)![1]} >&2; exit 1; }\nmake all`,
  );
  const token = /LWNOCWD (\w+)/.exec(prepared.script)![1];
  expect(prepared.checkCwd(Buffer.from(`LWNOCWD_${token}\n`))).toEqual({ stderr: Buffer.alloc(0), missingCwd: true });
  expect(prepared.checkCwd(Buffer.from('make: error\n'))).toEqual({ stderr: Buffer.from('make: error\n'), missingCwd: false });
  expect(execScript('true', {}, 'dut', 'ssh').script).toBe('true');
  expect(() => execScript('true', { env: { 'BAD-NAME': '1' } }, 'dut', 'telnet')).toThrow(
    /^dut \(telnet\): exec: "BAD-NAME" is not a valid environment variable name/,
  );
});

test('hop cycles are found with the names around the loop; chains without loops pass', () => {
  expect(findHopCycle({ a: { hop: 'b' }, b: { hop: 'c' }, c: { hop: 'a' } })).toEqual(['a', 'b', 'c', 'a']);
  expect(findHopCycle({ a: { hop: 'a' } })).toEqual(['a', 'a']);
  expect(findHopCycle({ x: { hop: 'y' }, y: { hop: 'z' }, z: { hop: 'y' } })).toEqual(['y', 'z', 'y']);
  expect(findHopCycle({ a: { hop: 'b' }, b: { hop: undefined }, c: { hop: 'b' } })).toBeUndefined();
  expect(findHopCycle({ a: { hop: 'missing' } })).toBeUndefined();
});
