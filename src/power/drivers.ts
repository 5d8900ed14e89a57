/** The driver for a power controller's config. */
import type { PduConfig } from '../config/schema.js';
import { commandDriver } from './commandDriver.js';
import { httpDriver } from './httpDriver.js';
import { QemuDriver } from './qemuDriver.js';
import type { PowerCommandRunner, PowerDriver } from './types.js';

/** Creates the driver of `config`; `runner` runs the command driver's programs where its `runOn` says. */
export function createDriver(config: PduConfig, runner: () => PowerCommandRunner): PowerDriver {
  switch (config.driver) {
    case 'qemu':
      return new QemuDriver(config);
    case 'command':
      return commandDriver(config, runner());
    case 'http':
      return httpDriver(config);
  }
}
