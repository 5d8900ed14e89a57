/** Hop chains: which bastions a host is reached through, outermost first. */
import { ConfigError } from '../util/errors.js';

interface HopLink {
  hop: string | undefined;
}

/** The first loop found among hop references, as the list of names around it, or undefined. */
export function findHopCycle(hosts: Readonly<Record<string, HopLink>>): string[] | undefined {
  const done = new Set<string>();
  for (const start of Object.keys(hosts)) {
    const path: string[] = [];
    const onPath = new Set<string>();
    let current: string | undefined = start;
    while (current !== undefined && hosts[current] && !done.has(current)) {
      if (onPath.has(current)) return [...path.slice(path.indexOf(current)), current];
      onPath.add(current);
      path.push(current);
      current = hosts[current]!.hop;
    }
    path.forEach((name) => done.add(name));
  }
  return undefined;
}

/**
 * The hosts `name` is reached through, outermost first (the one the runner connects to
 * directly comes first). Empty for a host without a hop.
 */
export function hopChain(hosts: Readonly<Record<string, HopLink>>, name: string): string[] {
  const chain: string[] = [];
  let current = hosts[name]?.hop;
  while (current !== undefined) {
    if (chain.includes(current) || current === name) {
      throw new ConfigError([`hop chain loops: ${[name, ...chain, current].join(' → ')}`]);
    }
    chain.unshift(current);
    current = hosts[current]?.hop;
  }
  return chain;
}
