/**
 * The commands of `labwright`, in help order. A new command is one file exporting a
 * {@link CliCommand} plus one line here (console, power and leases come this way).
 */
import type { CliCommand } from '../program.js';
import { check } from './check.js';
import { get, put } from './transfer.js';
import { run } from './run.js';
import { shell } from './shell.js';
import { trust } from './trust.js';

export const commands: readonly CliCommand[] = [check, run, shell, put, get, trust];
