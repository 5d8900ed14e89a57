/**
 * The lab's power controllers: one {@link Pdu} per PDU of the lab config, shared by every
 * host on it (so its actions are serialised across them), and one per host that brings a
 * driver of its own. Command drivers run their programs on the runner or on a lab host.
 */
import { LOCAL_HOST, type RemoteHostConfig } from '../config/defineLab.js';
import type { PduConfig } from '../config/schema.js';
import { createDriver } from '../power/drivers.js';
import { Pdu } from '../power/pdu.js';
import type { PowerCommandOutcome, PowerCommandRunner } from '../power/types.js';
import type { Host } from './host.js';
import { runLocalProcess } from './localExec.js';
import type { CommandResult } from './results.js';

function outcomeOf(result: CommandResult): PowerCommandOutcome {
  return { exitCode: result.exitCode, stdout: result.output, stderr: result.stderr ?? '', error: result.error };
}

/** Runs power commands where `runOn` says: the runner (quietly), or a lab host through its exec (in its transcript). */
export function powerCommandRunner(runOn: string | undefined, host: (name: string) => Host): PowerCommandRunner {
  if (runOn === undefined || runOn === LOCAL_HOST) {
    return {
      where: 'the runner',
      run: async (command, { timeout, signal, env }) => outcomeOf(await runLocalProcess(LOCAL_HOST, command, { timeout, signal, env, onLine: () => {} })),
    };
  }
  return {
    where: runOn,
    run: async (command, { timeout, signal, env }) => outcomeOf(await host(runOn).exec(command, { timeout, signal, env })),
  };
}

export class PowerControllers {
  private readonly shared = new Map<string, Pdu>();

  constructor(private readonly runner: (runOn: string | undefined) => PowerCommandRunner) {}

  /** The power controller of `host`, if it has power control. */
  forHost(host: RemoteHostConfig): Pdu | undefined {
    const power = host.power;
    if (!power) return undefined;
    if (power.own) return this.create(host.name, true, power.driver);
    let pdu = this.shared.get(power.pdu);
    if (!pdu) {
      pdu = this.create(power.pdu, false, power.driver);
      this.shared.set(power.pdu, pdu);
    }
    return pdu;
  }

  private create(name: string, own: boolean, config: PduConfig): Pdu {
    return new Pdu({ name, own, config, driver: createDriver(config, () => this.runner(config.driver === 'command' ? config.runOn : undefined)) });
  }
}
