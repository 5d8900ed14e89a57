/**
 * The command power driver: a program switches the outlet (a PDU's CLI, `ipmitool`, a relay
 * script), on the runner or on a lab host. `{outlet}` and `{host}` are filled in as shell
 * words; exit status 0 is success; the state command's output is matched against the
 * `stateOn`/`stateOff` patterns (without a state command the state is `unknown`).
 */
import type { CommandPowerConfig } from '../config/schema.js';
import { LabwrightError } from '../util/errors.js';
import { quoteForMessage } from '../util/secrets.js';
import { shellQuote } from '../util/shellQuote.js';
import { templateDriver } from './templateDriver.js';
import { fillTemplate } from './templates.js';
import type { PowerCommandRunner, PowerDriver } from './types.js';

/** The command driver of a PDU config; `runner` runs its programs where `runOn` says. */
export function commandDriver(config: CommandPowerConfig, runner: PowerCommandRunner): PowerDriver {
  return templateDriver('command', config, async (template, ref, signal) => {
    const command = fillTemplate(template, ref, shellQuote);
    const outcome = await runner.run(command, { timeout: config.timeout, signal, env: config.env });
    if (outcome.exitCode === 0 && outcome.error === undefined) return outcome.stdout;
    const why = outcome.error ?? `exit status ${outcome.exitCode ?? 'unknown'}`;
    const said = (outcome.stderr.trim() || outcome.stdout.trim()).slice(-500);
    throw new LabwrightError(
      `the command ${quoteForMessage(command, 300, 'start')} on ${runner.where} failed: ${why}${said ? `; it said ${quoteForMessage(said, 500)}` : ''}.`,
      {
        hint: 'Run the command by hand to check it, and the PDU it talks to.',
      },
    );
  });
}
