/**
 * Process-wide registry of secret strings (passwords, passphrases, TOTP seeds, expect
 * responses marked secret). Everything that leaves the library as text — transcripts,
 * step titles, error messages, logs — passes through {@link redact}.
 *
 * The registry is global on purpose: a secret registered by one lab must never leak
 * through another, and masking too much is harmless where leaking is not.
 */

/** What a secret is replaced with. */
export const MASK = '******';

interface Registry {
  secrets: Set<string>;
  /** Longest first, so a secret containing another is masked as a whole. */
  ordered: string[];
}

// Kept on globalThis so that two copies of labwright in one process (a lab file loaded
// through another module system, a duplicated dependency) share one registry.
const KEY = Symbol.for('labwright.secrets');
const registry: Registry = ((globalThis as Record<symbol, Registry | undefined>)[KEY] ??= { secrets: new Set(), ordered: [] });

/**
 * Shortest secret that is masked. Shorter values (a one-letter test password) would mask
 * that letter in every transcript and message, destroying them without protecting much.
 */
export const MIN_SECRET_LENGTH = 3;

/** Registers a secret so that {@link redact} masks it from now on. Values under {@link MIN_SECRET_LENGTH} characters are ignored. */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH || registry.secrets.has(value)) return;
  registry.secrets.add(value);
  registry.ordered = [...registry.secrets].sort((a, b) => b.length - a.length);
}

/** Returns `text` with every registered secret replaced by {@link MASK}. */
export function redact(text: string): string {
  if (registry.ordered.length === 0 || !text) return text;
  let out = text;
  for (const secret of registry.ordered) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  return out;
}

/**
 * Text for a message, quoted: secrets are masked first, then the text is cut to its last
 * `max` characters (`from: 'end'`, default) or its first, then JSON-quoted. In any other
 * order a secret containing `"` or `\`, or one cut in half, would slip past the mask.
 */
export function quoteForMessage(text: string, max: number, from: 'start' | 'end' = 'end'): string {
  const masked = redact(text);
  const cut = masked.length <= max ? masked : from === 'end' ? masked.slice(-max) : masked.slice(0, max);
  return JSON.stringify(cut);
}
