/** The host lifecycle: calls fail at once during an outage, calls in flight are told, and its gate on the network path. */
import { expect, test } from '@playwright/test';

import { HostLifecycle } from '../../src/host/lifecycle.js';
import type { NetworkPath } from '../../src/transport/network.js';
import { HostUnavailableError } from '../../src/util/errors.js';

test('an outage fails new calls at once, ends calls in flight with its reason, and ends', () => {
  const lifecycle = new HostLifecycle('dut1');
  const inFlight = lifecycle.signal;
  lifecycle.begin('rebooting', 'power-cycled by a test', 'dut1 was power-cycled while this ran');
  expect(inFlight.aborted).toBe(true);
  expect((inFlight.reason as Error).message).toBe('dut1 was power-cycled while this ran');
  expect(() => lifecycle.assertUsable()).toThrow(HostUnavailableError);
  expect(() => lifecycle.assertUsable()).toThrow(/^dut1: dut1 is rebooting \(power-cycled by a test, \d+ ms ago\)\. Calls made during a reboot fail at once/);
  lifecycle.enter('down', 'it did not come back within 1.00 s');
  expect(() => lifecycle.assertUsable()).toThrow(/^dut1: dut1 did not come back: it did not come back within 1\.00 s\. Check the device/);
  lifecycle.end();
  expect(() => lifecycle.assertUsable()).not.toThrow();
  expect(lifecycle.signal.aborted).toBe(false);
});

test('the gate passes every argument through, and refuses new connections while they are blocked', async () => {
  const seen: unknown[][] = [];
  const path: NetworkPath = {
    description: 'via bastion',
    connect: async (...args) => {
      seen.push(args);
      return undefined as never;
    },
    endpoint: async (...args) => {
      seen.push(args);
      return { host: '127.0.0.1', port: 1, release: async () => {} };
    },
  };
  const lifecycle = new HostLifecycle('dut1');
  const gated = lifecycle.gate(path);
  const context = { host: 'dut1', protocol: 'nc' as const };
  await gated.connect('10.0.0.5', 40000, 1_000, context, { halfOpen: true });
  await gated.endpoint('10.0.0.5', 21, context);
  expect(seen).toEqual([
    ['10.0.0.5', 40000, 1_000, context, { halfOpen: true }],
    ['10.0.0.5', 21, context],
  ]);
  expect(gated.description).toBe('via bastion');
  lifecycle.blockConnections('it is being power-cycled');
  await expect(gated.connect('10.0.0.5', 22, 1_000, context)).rejects.toThrow(/^dut1 \(nc\): no new connection to dut1: it is being power-cycled\.$/);
  await expect(gated.endpoint('10.0.0.5', 21, context)).rejects.toThrow(HostUnavailableError);
  lifecycle.allowConnections();
  await gated.connect('10.0.0.5', 22, 1_000, context);
  expect(seen).toHaveLength(3);
});
