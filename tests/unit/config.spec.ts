/** Lab config validation: each kind of invalid config produces its own message. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { defineLab, env, type LabInput } from '../../src/config/defineLab.js';
import { hopChain } from '../../src/config/hops.js';
import { loadLab } from '../../src/config/load.js';
import { redact } from '../../src/util/secrets.js';
import { configProblem as problem } from '../helpers/configProblem.js';

const user = { root: { password: 'unit-test-password' } };

test('a valid lab gets defaults, a default user and a default transfer method', () => {
  const lab = defineLab({
    defaults: { ssh: { keepaliveInterval: 1_000 }, commandTimeout: 5_000 },
    hosts: {
      a: { address: '10.0.0.1', users: { admin: {}, root: {} } },
      t: { address: '10.0.0.2', term: 'telnet', user: 'root', users: user, ssh: { port: 2222 } },
    },
  });
  expect(lab.hosts.a).toMatchObject({ user: 'admin', term: 'ssh', transfer: 'sftp', ssh: { port: 22, keepaliveInterval: 1_000, hostKeyPolicy: 'strict' } });
  expect(lab.hosts.t).toMatchObject({ user: 'root', transfer: 'ftp', ssh: { port: 2222, keepaliveInterval: 1_000 } });
  expect(lab.commandTimeout).toBe(5_000);
  expect(lab.local.name).toBe('local');
});

const cases: [string, unknown, RegExp][] = [
  ['wrong type', { hosts: { dut1: { address: '1.2.3.4', users: user, ssh: { port: 'abc' } } } }, /host "dut1" → ssh\.port: expected number, got "abc"/],
  [
    'out of range',
    { hosts: { dut1: { address: '1.2.3.4', users: user, ssh: { port: 70000 } } } },
    /host "dut1" → ssh\.port: expected a value <= 65535, got 70000/,
  ],
  ['missing field', { hosts: { dut1: { users: user } } }, /host "dut1" → address: required \(only a host with a console may leave it out\)/],
  [
    'misspelt field',
    { hosts: { dut1: { adress: 'x', address: 'y', users: user } } },
    /host "dut1" → adress: unknown field \(did you mean "address"\?\); known fields here: address, term/,
  ],
  [
    'unknown option',
    { hosts: { dut1: { address: 'x', users: user, ssh: { keepalive: 5 } } } },
    /host "dut1" → ssh\.keepalive: unknown field \(did you mean "keepaliveInterval"\?\)|host "dut1" → ssh\.keepalive: unknown field/,
  ],
  [
    'bad enum',
    { hosts: { dut1: { address: 'x', users: user, term: 'serial' } } },
    /host "dut1" → term: expected one of "ssh", "telnet", "console", got "serial"/,
  ],
  [
    'bad policy',
    { hosts: { dut1: { address: 'x', users: user, ssh: { hostKeyPolicy: 'yes' } } } },
    /ssh\.hostKeyPolicy: expected one of "strict", "accept-new", "off", got "yes"/,
  ],
  ['no users', { hosts: { dut1: { address: 'x', users: {} } } }, /host "dut1" → users: at least one user is required/],
  [
    'unknown default user',
    { hosts: { dut1: { address: 'x', user: 'rooot', users: user } } },
    /host "dut1" → user: "rooot" is not one of its users \(root\); did you mean "root"\?/,
  ],
  [
    'missing env secret',
    { hosts: { dut1: { address: 'x', users: { root: { password: env('LW_NOT_SET_ANYWHERE') } } } } },
    /host "dut1" → users\.root\.password: environment variable LW_NOT_SET_ANYWHERE is not set/,
  ],
  [
    'secret of wrong type',
    { hosts: { dut1: { address: 'x', users: { root: { password: 1234 } } } } },
    /users\.root\.password: expected string or object, got a value \(hidden: it may be a credential\)/,
  ],
  [
    'unknown hop',
    { hosts: { dut1: { address: 'x', hop: 'bastoin', users: user }, bastion: { address: 'y', users: user } } },
    /host "dut1" → hop: names "bastoin", which is not a host of this lab \(did you mean "bastion"\?\)/,
  ],
  [
    'hop cycle',
    { hosts: { a: { address: 'x', hop: 'b', users: user }, b: { address: 'y', hop: 'c', users: user }, c: { address: 'z', hop: 'a', users: user } } },
    /hop chain loops: a → b → c → a/,
  ],
  ['self hop', { hosts: { a: { address: 'x', hop: 'a', users: user } } }, /host "a" → hop: a host cannot be its own hop/],
  [
    'telnet hop',
    { hosts: { a: { address: 'x', hop: 'b', users: user }, b: { address: 'y', term: 'telnet', users: user } } },
    /host "a" → hop: "b" is a telnet host; a hop must speak SSH/,
  ],
  ['local as hop', { hosts: { a: { address: 'x', hop: 'local', users: user } } }, /"local" cannot be a hop/],
  ['reserved name', { hosts: { local: { address: 'x', users: user } } }, /host "local": the name "local" is reserved/],
  ['bad name', { hosts: { 'bad name': { address: 'x', users: user } } }, /host "bad name": host names use letters, digits/],
  [
    'bad regex',
    { hosts: { dut1: { address: 'x', users: user, telnet: { loginPrompt: '(' } } } },
    /host "dut1" → telnet\.loginPrompt: not a valid regular expression/,
  ],
  [
    'bad defaults',
    { defaults: { ssh: { port: 0 } }, hosts: { dut1: { address: 'x', users: user } } },
    /^Invalid lab configuration: lab defaults → ssh\.port: expected a value >= 1, got 0$/,
  ],
  ['unknown top level', { host: {} }, /lab → host: unknown field \(did you mean "hosts"\?\)/],
  ['bad local', { local: { shell: { maxLineLength: 10 } } }, /local host → shell\.maxLineLength: expected a value >= 64, got 10/],
];

for (const [name, input, expected] of cases) {
  test(`invalid config: ${name}`, () => {
    expect(problem(input)).toMatch(expected);
  });
}

test('every problem is reported at once', () => {
  const message = problem({ hosts: { a: { users: user }, b: { address: 'x', users: user, ssh: { port: -1 } } } });
  expect(message).toContain('Invalid lab configuration:\n  - host "a" → address');
  expect(message).toContain('\n  - host "b" → ssh.port');
});

test('secrets from the config and the environment are registered for redaction', () => {
  process.env.LW_UNIT_SECRET = 'env-held-secret';
  defineLab({ hosts: { a: { address: 'x', users: { root: { password: 'literal-secret', passphrase: env('LW_UNIT_SECRET') } } } } });
  expect(redact('value literal-secret and env-held-secret')).toBe('value ****** and ******');
});

test('hop chains are listed outermost first', () => {
  const lab = defineLab({
    hosts: {
      inner: { address: 'i', hop: 'mid', users: user },
      mid: { address: 'm', hop: 'outer', users: user },
      outer: { address: 'o', users: user },
    },
  });
  expect(hopChain(lab.hosts, 'inner')).toEqual(['outer', 'mid']);
  expect(hopChain(lab.hosts, 'outer')).toEqual([]);
});

test('loading a lab file: TypeScript, plain objects, missing files and broken modules', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lw-labfile-'));
  await writeFile(path.join(dir, 'plain.lab.ts'), `export default { hosts: { a: { address: 'x', users: { u: {} } } } };`);
  expect((await loadLab(path.join(dir, 'plain.lab.ts'))).hosts.a?.address).toBe('x');
  await writeFile(path.join(dir, 'bad.lab.ts'), `export default { hosts: { a: { address: 5, users: { u: {} } } } };`);
  await expect(loadLab(path.join(dir, 'bad.lab.ts'))).rejects.toThrow(
    /Invalid lab configuration in .*bad\.lab\.ts: host "a" → address: expected string, got 5/,
  );
  await writeFile(path.join(dir, 'broken.lab.ts'), `import nothing from './nope.js'; export default nothing;`);
  await expect(loadLab(path.join(dir, 'broken.lab.ts'))).rejects.toThrow(/could not load .*broken\.lab\.ts: .*nope/);
  await expect(loadLab(path.join(dir, 'absent.ts'))).rejects.toThrow(/lab file .*absent\.ts does not exist/);
});

test('a TypeScript lab file in a CommonJS package and one in an ES module package both load', async () => {
  for (const type of ['commonjs', 'module']) {
    const dir = await mkdtemp(path.join(os.tmpdir(), `lw-labfile-${type}-`));
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type }));
    await writeFile(path.join(dir, 'devices.ts'), `export const address: string = '10.1.1.1';`);
    await writeFile(
      path.join(dir, 'lab.config.ts'),
      `import { address } from './devices${type === 'module' ? '.js' : ''}';\nexport default { hosts: { a: { address, users: { u: {} } } } };`,
    );
    expect((await loadLab(path.join(dir, 'lab.config.ts'))).hosts.a?.address, type).toBe('10.1.1.1');
  }
});

test('secrets shorter than three characters are not masked (they would mask ordinary text)', () => {
  defineLab({ hosts: { a: { address: 'x', users: { root: { password: 'q' }, admin: { password: 'abc' } } } } });
  expect(redact('quiet abcde')).toBe('quiet ******de');
});

test('no credential value appears in a config error, wherever it was put', () => {
  const cases: unknown[] = [
    { hosts: { dut1: { address: 'x', users: { root: 'Misplaced-S3cret' } } } },
    { hosts: { dut1: { address: 'x', users: ['someone', 'Misplaced-S3cret'] } } },
    { hosts: { dut1: { address: 'x', users: { root: { password: ['Misplaced-S3cret'] } } } } },
    { hosts: { dut1: { address: 'x', users: { root: { pasword: 'Misplaced-S3cret' } } } } },
    { hosts: { dut1: { address: 'x', users: { root: {} }, ssh: { keyboardInteractive: [{ prompt: 'x', answer: 'Misplaced-S3cret' }] } } } },
  ];
  for (const input of cases) {
    let message = '';
    try {
      defineLab(input as LabInput);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message, JSON.stringify(input)).toMatch(/Invalid lab configuration/);
    expect(message).not.toContain('Misplaced-S3cret');
    expect(message).not.toContain('S3cret');
  }
});
