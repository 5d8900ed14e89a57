/**
 * Sharing devices: a test leases its device, so that no other test, `--shard` runner or
 * machine sharing the lab's lease store uses it meanwhile. The lease (and any wait for it)
 * shows in the device's transcript; `exclusive('name')` does the same for a named host.
 */
import { expect, test } from 'labwright';

test('a test leases its device and works on it alone', async ({ dut, lease, lab }) => {
  const device = await lease(dut.name);
  expect(device).toBe(dut);
  const { holders } = await lab.leases.snapshot();
  const mine = holders.find((h) => h.device === dut.name);
  expect(mine?.holder.purpose).toContain('leases.spec.ts › a test leases its device');
  expect(mine?.token).toBe(device.leaseToken);
  expect(await device.run(`echo "working alone under fencing token ${device.leaseToken}"`)).toSucceed();
});
