/**
 * Filling `{outlet}` and `{host}` into a driver's templates, each value escaped for where
 * it goes (a shell word, a URL component, a body). Other braces are left alone, so
 * `docker inspect -f '{{.State.Running}}'` passes through unchanged.
 */
import type { OutletRef } from './types.js';

const PLACEHOLDER = /\{(outlet|host)\}/g;

/**
 * `template` with `{outlet}` and `{host}` replaced by `escape(value)`. A template naming
 * `{outlet}` for a host that has none is an error (it would silently act on the wrong outlet).
 */
export function fillTemplate(template: string, ref: OutletRef, escape: (value: string) => string = (value) => value): string {
  return template.replace(PLACEHOLDER, (_, name: 'outlet' | 'host') => {
    const value = name === 'host' ? ref.host : ref.outlet;
    if (value === undefined)
      throw new Error(`the template ${JSON.stringify(template)} needs {outlet}, and host "${ref.host}" has no outlet (add outlet to its power config)`);
    return escape(value);
  });
}
