/**
 * The shell must not be fooled (issue 10, section 7), on every userland: functions and
 * aliases named like the builtins labwright types (from a command or from the profile)
 * never change a reported status or lose output; where the shell cannot be trusted the
 * error says so.
 */
import type { Lab as StartedLab } from '../../fixtures/lab/startLab.js';
import type { RemoteHost } from '../../src/host/remoteHost.js';
import { shellQuote } from '../../src/util/shellQuote.js';
import { expect, test, type Userland, userlandLab } from '../helpers/userlands.js';

/**
 * Definitions that would fool a naive wrapper: each of the names labwright types, as a
 * function that lies about its status or prints something else, and as an alias. Shells
 * that refuse a name (dash and ash keep special builtins) just report a syntax error.
 */
const FOOLS = [
  'printf() { echo "printf was redefined"; return 0; }',
  'command() { return 0; }',
  'stty() { echo "stty was redefined"; return 0; }',
  'set() { return 0; }',
  'unset() { return 0; }',
  'export() { return 0; }',
  "alias printf='echo printf was aliased'",
  "alias command='true'",
  "alias builtin='true'",
  "alias unset='true'",
  "alias stty='true'",
  // Last: the definitions above are made with eval.
  'eval() { return 0; }',
  "alias eval='true'",
];

/** Commands whose true outcomes are known, checked after the shell was tampered with. */
async function expectTrueOutcomes(host: RemoteHost | Awaited<ReturnType<RemoteHost['openSession']>>): Promise<void> {
  const r = await host.run(['false', '(exit 7)', 'echo visible; true', "cat <<'EOF'\n\tindented\nEOF", 'echo "unbalanced']);
  expect(r.results.slice(0, 4).map((x) => x.exitCode)).toEqual([1, 7, 0, 0]);
  expect(r.results[2]!.output).toBe('visible\n');
  // The tab of this command is typed through labwright's own printf.
  expect(r.results[3]!.output).toBe('\tindented\n');
  expect(r.results[4]!.exitCode).not.toBe(0);
  expect(r.results[4]!.timedOut).toBe(false);
  // A timeout still recovers the shell, and the terminal still passes bytes unchanged.
  expect((await host.run('sleep 30', { timeout: 500 })).only.error).toContain('interrupted and recovered');
  expect((await host.run('stty sane; echo "a	b"')).only.exitCode).toBe(0);
  expect((await host.run('echo "a	b"')).only.output).toBe('a\tb\n');
}

test('functions and aliases named like the builtins labwright uses, defined by a command, change no reported status', async ({ device }) => {
  for (const fool of FOOLS) await device.run(fool);
  await expectTrueOutcomes(device);
});

test('a profile defining them does not fool a new shell either', async ({ device, board, land }) => {
  await withProfile(board, land, profileDefining(), async () => {
    const session = await device.openSession('tampered');
    // The profile really took effect: the shell sees a function or an alias.
    expect((await session.run('type eval command stty 2>&1; true')).only.output).toMatch(/function|alias/);
    await expectTrueOutcomes(session);
    await session.close();
  });
});

test('exec keeps stdout, stderr and stdin apart when the profile defines them', async ({ device, board, land }) => {
  await withProfile(board, land, profileDefining(), async () => {
    const r = await device.exec('cat; echo out; echo err >&2; exit 3', { stdin: 'piped\n' });
    expect([r.output, r.stderr, r.exitCode]).toEqual(['piped\nout\n', 'err\n', 3]);
  });
});

/**
 * Every definition of {@link FOOLS} as profile lines, each tried in a subshell first: a name
 * the shell refuses must not end the profile (dash, ash and mksh stop reading it at a
 * syntax error in eval).
 */
function profileDefining(): string {
  return FOOLS.map((fool) => `if (eval ${shellQuote(fool)}) 2>/dev/null; then eval ${shellQuote(fool)}; fi`).join('\n');
}

/** Runs `body` while `text` is appended to the userland's login profile. */
async function withProfile(board: StartedLab, land: Userland, text: string, body: () => Promise<void>): Promise<void> {
  const rc = `/home/${board.credentials.board[land.shell].username}/${land.rcFile}`;
  const host = board.host('board');
  await host.exec(`cp -p ${rc} ${rc}.lw-saved && printf '%s\\n' ${shellQuote(text)} >> ${rc}`);
  try {
    await body();
  } finally {
    await host.exec(`mv ${rc}.lw-saved ${rc}`);
  }
}

test('a function named builtin (bash, zsh) ends the command in an error that says so, never in a status', async ({ device, land }) => {
  test.skip(land.family !== 'bash' && land.family !== 'zsh', 'only bash and zsh call builtins through `builtin`');
  expect((await device.run('cd /tmp')).only.exitCode).toBe(0);
  const fooled = await device.run('builtin() { return 0; }', { timeout: 2_000 });
  expect(fooled.only.exitCode).toBeNull();
  expect(fooled.only.status).toBe('error');
  expect(fooled.only.error).toMatch(/did not recover and was closed.*function named `builtin`/);
  // The next command gets a new shell, where the function does not exist.
  expect((await device.run('pwd')).only.output).not.toBe('/tmp\n');
  expect((await device.run('echo trusted again')).only.output).toBe('trusted again\n');
});

test('a profile defining a function named builtin (bash, zsh): opening the shell fails with an error that names it', async ({ board, land }) => {
  test.skip(land.family !== 'bash' && land.family !== 'zsh', 'only bash and zsh call builtins through `builtin`');
  // Short bounds: the shell never answers, and the test need not wait the default 20 s.
  const lab = userlandLab(board, land, { shell: { openTimeout: 3_000 }, telnet: { loginTimeout: 4_000 } });
  await withProfile(board, land, 'builtin() { return 0; }', async () => {
    const error = await lab
      .remote('board')
      .run('true')
      .then(
        () => 'opened',
        (e: Error) => e.message,
      );
    expect(error).toMatch(new RegExp(`^board \\(${land.term}\\): .*function named \`builtin\``));
  });
  await lab.close();
});
