/** Labs built in memory for tests. */
import { defineLab, type LabInput } from '../../src/config/defineLab.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab, type LabOptions } from '../../src/host/lab.js';

/** A lab from an inline definition, plus every event it emitted. */
export function testLab(input: LabInput = {}, options: LabOptions = {}) {
  const lab = new Lab(defineLab(input), options);
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  return { lab, events };
}
