/**
 * The executor on a server with MaxSessions 3: hundreds of concurrent exec calls over one
 * connection, a restarted sshd under load, a frozen device noticed by keepalives, wrapper mode.
 */
import type { HostInput } from '../../src/config/schema.js';
import { expect, privateLab, type StartedLab, targetLab, test } from '../helpers/containerLab.js';

let started: StartedLab;
test.beforeAll(async () => {
  started = await privateLab({ roles: ['target'], roleOptions: { target: { maxSessions: 3 } } });
});
test.afterAll(async () => {
  await started?.stop();
});

const labOf = (overrides: Partial<HostInput> = {}) => targetLab(started, overrides);

/** Established SSH connections on the device (from its own point of view). */
async function serverConnections(): Promise<number> {
  const out = await started.host('target').exec(`ss -Htn state established '( sport = :22 )' | wc -l`);
  return Number(out.stdout.trim());
}

test('200 concurrent exec calls all succeed over one connection bounded by the probed MaxSessions', async () => {
  const { lab, events, target } = labOf();
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => target.exec(`echo ${i}; sleep 0.0$((${i} % 5))`, { timeout: 60_000 })));
  results.forEach((r, i) => expect(r.output).toBe(`${i}\n`));
  const connected = events.filter((e) => e.type === 'connection' && e.event === 'connected');
  expect(connected).toHaveLength(1);
  expect(connected[0]).toMatchObject({ detail: expect.stringContaining('MaxSessions 3 (probed)') });
  expect(await serverConnections()).toBe(1);
  await lab.close();
});

test('sshd restarted in the middle of 200 calls: each completes or fails clearly, none hangs, one connection after', async () => {
  const { lab, target } = labOf();
  await target.exec('true');
  const calls = Array.from({ length: 200 }, (_, i) =>
    target.exec(`sleep 0.05; echo ${i}`, { timeout: 60_000 }).then(
      (r) => ({ ok: r.output === `${i}\n` && r.exitCode === 0, message: '' }),
      (error: Error) => ({ ok: false, message: error.message }),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  await started.host('target').restartSshd();
  const outcomes = await Promise.all(calls);
  for (const outcome of outcomes.filter((o) => !o.ok)) expect(outcome.message).toMatch(/^target \(ssh\): /);
  expect(outcomes.filter((o) => o.ok).length).toBeGreaterThan(150);
  expect((await target.exec('echo after')).output).toBe('after\n');
  await expect.poll(serverConnections).toBe(1);
  await lab.close();
});

test('a frozen device is noticed by keepalives within their bound; commands fail clearly, then reconnect', async () => {
  const { lab, events, target } = labOf({
    ssh: { keepaliveInterval: 1_000, keepaliveCountMax: 2, connectTimeout: 3_000, connectAttempts: 1, commandRetries: 0 },
  });
  await target.exec('true');
  const device = started.host('target');
  await device.pause();
  try {
    const pending = target.exec('echo never', { timeout: 30_000 }).then(
      () => 'completed',
      (error: Error) => error.message,
    );
    // interval × (countMax + 1) plus slack: the loss must be noticed well before the command's own timeout.
    await expect.poll(() => events.some((e) => e.type === 'connection' && e.event === 'lost'), { timeout: 8_000 }).toBe(true);
    expect(await pending).toMatch(/^target \(ssh\): /);
  } finally {
    await device.unpause();
  }
  expect((await target.exec('echo thawed')).output).toBe('thawed\n');
  await lab.close();
});

test('wrapper mode sends each command and its stdin to a fixed remote program', async () => {
  const { lab, target } = labOf({ ssh: { wrapper: '/bin/sh -s' } });
  const r = await target.exec('echo "args: $0"; tr a-z A-Z', { stdin: 'through the wrapper\n' });
  expect(r.output).toBe('args: /bin/sh\nTHROUGH THE WRAPPER\n');
  const code = await target.exec('exit 9');
  expect(code.exitCode).toBe(9);
  await lab.close();
});
