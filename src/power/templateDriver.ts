/**
 * What the command and HTTP drivers share: each action is a template sent somewhere (a
 * command line run, a request made), `cycle` and `state` only when configured, and the
 * state told from the answer by the `stateOn`/`stateOff` patterns.
 */
import type { OutletRef, PowerDriver, PowerState } from './types.js';

/** A driver's templates and state patterns, as configured. */
export interface TemplateConfig<T> {
  on: T;
  off: T;
  cycle?: T | undefined;
  state?: T | undefined;
  stateOn: RegExp;
  stateOff: RegExp;
}

/** Sends one template for `ref`; resolves with the answer (command output, response body), throws on failure. */
export type SendTemplate<T> = (template: T, ref: OutletRef, signal: AbortSignal) => Promise<string>;

/** The power state an answer tells by the patterns: `unknown` when neither or both match. */
export function stateFromText(text: string, patterns: { stateOn: RegExp; stateOff: RegExp }): PowerState {
  const off = patterns.stateOff.test(text);
  const on = patterns.stateOn.test(text);
  if (on === off) return 'unknown';
  return on ? 'on' : 'off';
}

/** A driver sending `config`'s templates with `send`. */
export function templateDriver<T>(kind: 'command' | 'http', config: TemplateConfig<T>, send: SendTemplate<T>): PowerDriver {
  const { cycle, state } = config;
  return {
    kind,
    on: async (ref, signal) => void (await send(config.on, ref, signal)),
    off: async (ref, signal) => void (await send(config.off, ref, signal)),
    ...(cycle === undefined ? {} : { cycle: async (ref: OutletRef, signal: AbortSignal) => void (await send(cycle, ref, signal)) }),
    ...(state === undefined ? {} : { state: async (ref: OutletRef, signal: AbortSignal) => stateFromText(await send(state, ref, signal), config) }),
  };
}
