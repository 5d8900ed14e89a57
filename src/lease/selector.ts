/** Lease selectors: a host name, or any host carrying a set of tags, resolved against the lab's hosts. */
import { suggest } from '../config/problems.js';
import { LeaseError } from '../util/errors.js';
import { assignSlots } from './book.js';

/** Which device a lease wants: a host by name, or any host that has every one of `tags`. */
export type LeaseSelector = string | { host: string } | { tags: readonly string[] };

/** A device that can be leased: a host of the lab and its tags. */
export interface LeaseDevice {
  name: string;
  tags: readonly string[];
}

/** `dut1` or `tags [arm64, rev-b]`. */
export function describeSelector(selector: LeaseSelector): string {
  if (typeof selector === 'string') return selector;
  if ('host' in selector) return selector.host;
  return `tags [${selector.tags.join(', ')}]`;
}

/**
 * Turns selectors into slots (the acceptable devices of each wanted device). Throws a
 * LeaseError of kind `no-match` when a selector matches no device of the lab, or the request
 * could never be served at once (two slots, one matching device).
 */
export function resolveSelectors(selectors: readonly LeaseSelector[], devices: readonly LeaseDevice[], lab = 'the lab'): { slots: string[][]; text: string } {
  const names = devices.map((device) => device.name);
  const text = selectors.map(describeSelector).join(' + ');
  if (selectors.length === 0) throw new LeaseError('no-match', 'a lease needs at least one selector (a host name or { tags: [...] }).');
  const slots = selectors.map((selector): string[] => {
    if (typeof selector === 'string' || 'host' in selector) {
      const name = typeof selector === 'string' ? selector : selector.host;
      if (names.includes(name)) return [name];
      const hint = suggest(name, names);
      throw new LeaseError('no-match', `no host named "${name}" in ${lab}${hint ? `; did you mean "${hint}"?` : ''} Known hosts: ${names.join(', ')}.`, {
        hint: 'Lease a host of the lab config, or add it there.',
      });
    }
    if (selector.tags.length === 0) throw new LeaseError('no-match', 'a tag selector needs at least one tag ({ tags: ["arm64"] }).');
    const matching = devices.filter((device) => selector.tags.every((tag) => device.tags.includes(tag))).map((device) => device.name);
    if (matching.length > 0) return matching;
    const tagged = devices.filter((device) => device.tags.length > 0).map((device) => `${device.name} [${device.tags.join(', ')}]`);
    throw new LeaseError('no-match', `no host of ${lab} has every tag of [${selector.tags.join(', ')}]; hosts with tags: ${tagged.join(', ') || 'none'}.`, {
      hint: 'Fix the tags of the selector or of the hosts in the lab config.',
    });
  });
  if (!assignSlots(slots, () => true)) {
    throw new LeaseError(
      'no-match',
      `${text} can never be served at once: it wants ${slots.length} distinct devices and ${lab} cannot provide them (${slots.map((slot) => slot.join('|')).join(', ')}).`,
      {
        hint: 'Ask for fewer devices, or name each one once.',
      },
    );
  }
  return { slots, text };
}
