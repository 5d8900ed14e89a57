#!/usr/bin/env node
/** The `labwright` executable (package.json "bin"). */
import { runCli } from './program.js';

const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
const code = await runCli(process.argv, io);
// Every connection is closed by now; some bounded waits of closing still hold timers, so
// exit once stdout and stderr are flushed (writes to pipes are asynchronous) rather than
// when the event loop happens to drain.
const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
