/**
 * A process that leases one device and then does nothing: the benchmark kills it with SIGKILL
 * to measure how long the device takes to be leased again.
 *   node --import tsx bench/leaseHolder.ts <store> <device> <ttl ms>
 * Prints `held <token>` once the lease is granted.
 */
import { defineLab } from '../src/config/defineLab.js';
import { Lab } from '../src/host/lab.js';

const [store, device, ttl] = process.argv.slice(2);
delete process.env.LABWRIGHT_LEASES;
const lab = new Lab(defineLab({ hosts: { [device!]: { address: '192.0.2.1', users: { lab: {} } } }, leases: { store: store!, ttl: Number(ttl) } }));
const held = await lab.lease(device!, { purpose: 'benchmark holder, about to be killed' });
console.log(`held ${held.token}`);
setInterval(() => {}, 60_000);
