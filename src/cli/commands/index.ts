/**
 * The commands of `labwright`, in help order. A new command is one file exporting a
 * {@link CliCommand} plus one line here.
 */
import type { CliCommand } from '../program.js';
import { check } from './check.js';
import { consoleCommand } from './console.js';
import { leases } from './leases.js';
import { power } from './power.js';
import { run } from './run.js';
import { shell } from './shell.js';
import { get, put } from './transfer.js';
import { trust } from './trust.js';

export const commands: readonly CliCommand[] = [check, run, shell, consoleCommand, put, get, power, leases, trust];
