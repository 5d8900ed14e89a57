/**
 * The persistent shell, on every device of the lab (one Playwright project per device):
 * state between commands, exit codes, interactive prompts, timeouts that recover the
 * shell, parallel named sessions and stateless exec.
 */
import { expect, secret, test } from 'labwright';

test('the default shell keeps state between commands', async ({ dut }) => {
  const setup = await dut.run(['cd /tmp', 'export GREETING="hello from labwright"']);
  expect(setup).toSucceed();
  const r = await dut.run(['pwd', 'echo "$GREETING"']);
  expect(r).toSucceed();
  expect(r.results[0]).toHaveOutput('/tmp');
  expect(r.last.output).toBe('hello from labwright\n');
});

test('exit codes are reported per command', async ({ dut }) => {
  const r = await dut.run(['true', 'exit_with() { return $1; }; exit_with 3']);
  expect(r.results[0]).toSucceed();
  expect(r.last).toHaveExitCode(3);
  expect(r.status).toBe('failed');
});

test('interactive prompts are answered through expects', async ({ dut }) => {
  const r = await dut.run('printf "Username: "; read u; printf "Password: "; read p; echo "logged in as $u"', {
    expects: [
      [/Username: $/, 'operator'],
      [/Password: $/, secret('example-password')],
    ],
  });
  expect(r).toSucceed();
  expect(r).toHaveOutput('logged in as operator');
});

test('a hung command times out and the shell recovers', async ({ dut }) => {
  await dut.run('cd /tmp');
  const hung = await dut.run('echo started; sleep 600', { timeout: 1_000 });
  expect(hung.only.timedOut).toBe(true);
  expect(hung.only.output).toContain('started');
  const after = await dut.run(['echo still here', 'pwd']);
  expect(after.results[0]).toHaveOutput('still here');
  expect(after.last.output).toBe('/tmp\n');
});

test('named sessions run in parallel with the default one', async ({ dut }) => {
  test.skip(dut.config.kind === 'remote' && dut.config.term === 'console', 'a serial console has one shell: named sessions need SSH or telnet');
  const monitor = await dut.openSession('monitor');
  const [slow, quick] = await Promise.all([dut.run('sleep 1; echo slow done'), monitor.run('echo quick done')]);
  expect(slow).toHaveOutput('slow done');
  expect(quick).toHaveOutput('quick done');
});

test('exec runs stateless commands concurrently', async ({ dut }) => {
  const results = await Promise.all([1, 2, 3].map((i) => dut.exec(`echo out${i}; exit ${i}`)));
  results.forEach((r, i) => {
    expect(r).toHaveExitCode(i + 1);
    expect(r.output).toBe(`out${i + 1}\n`);
  });
});

test('a long multi-line script runs as one command', async ({ dut }) => {
  const script = ['total=0', 'for i in $(seq 1 100); do', '  total=$((total + i))', 'done', `echo "sum=$total" # ${'padding '.repeat(200)}`].join('\n');
  expect(await dut.run(script)).toHaveOutput('sum=5050');
});
