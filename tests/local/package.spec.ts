/**
 * The published package as a new user gets it: `npm pack`, installed into a fresh ESM and a
 * fresh CommonJS project, type-checked with `skipLibCheck: false`, config fields documented
 * on hover, the README's first test run, `labwright/core` from a script, the bin.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';
import ts from 'typescript';

import { repoRoot } from '../helpers/inlineTest.js';

test.describe.configure({ mode: 'default', timeout: 10 * 60_000 });

let root: string;

const LAB = `import { defineLab } from 'labwright/core';

export default defineLab({
  local: { commandTimeout: 10_000, logs: { commands: ['uname -a'] } },
  hosts: {
    dut1: {
      address: '10.0.0.5',
      users: { root: { password: { env: 'DUT1_PW' } } },
      ssh: { port: 22, connectTimeout: 5_000, hostKeyPolicy: 'accept-new' },
    },
  },
});
`;

const SPEC = `import { test, expect, noLogs } from 'labwright';

test('the runner answers', async ({ host }) => {
  const local = await host('local');
  const r = await local.run(['cd /tmp', 'pwd']);
  expect(r).toSucceed();
  expect(r.last.output).toBe('/tmp\\n');
});

test('without failure logs', noLogs, async ({ dut }) => {
  expect(await dut.exec('echo hi')).toHaveOutput('hi');
});
`;

const CONFIG = `import { defineConfig } from '@playwright/test';
import type { LabwrightOptions } from 'labwright';

export default defineConfig<LabwrightOptions>({
  globalSetup: 'labwright/global-setup',
  reporter: [['json', { outputFile: 'report.json' }]],
  projects: [{ name: 'runner', use: { defaultHost: 'local', collectLogs: true } }],
});
`;

const SCRIPT = `import { Lab, type RemoteHost } from 'labwright/core';

async function main(): Promise<void> {
  const lab = await Lab.load('lab.config.ts');
  const dut: RemoteHost = lab.remote('dut1');
  void dut.connections.connected;
  console.log((await lab.host('local').run('echo from-core')).last.output.trim());
  await lab.close();
}
void main();
`;

const TSCONFIG = JSON.stringify({
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] },
  include: ['*.ts'],
});

test.beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'lw-package-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', root], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'], timeout: 5 * 60_000 });
  const tarball = readdirSync(root).find((name) => name.endsWith('.tgz'))!;
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'consumers', private: true }));
  const versions = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  execFileSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      `./${tarball}`,
      `@playwright/test@${versions.devDependencies['@playwright/test']}`,
      `typescript@${versions.devDependencies.typescript}`,
      '@types/node@^20',
    ],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], timeout: 8 * 60_000 },
  );
  for (const kind of ['esm', 'cjs'] as const) {
    const dir = path.join(root, kind);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `consumer-${kind}`, private: true, type: kind === 'esm' ? 'module' : 'commonjs' }));
    writeFileSync(path.join(dir, 'tsconfig.json'), TSCONFIG);
    writeFileSync(path.join(dir, 'lab.config.ts'), LAB);
    writeFileSync(path.join(dir, 'example.spec.ts'), SPEC);
    writeFileSync(path.join(dir, 'playwright.config.ts'), CONFIG);
    writeFileSync(path.join(dir, 'script.ts'), SCRIPT);
  }
});

for (const kind of ['esm', 'cjs'] as const) {
  test(`${kind}: the published types check with skipLibCheck false`, () => {
    const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, kind)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });

  test(`${kind}: the first test of the README runs with npx playwright test`, () => {
    const run = spawnSync(process.execPath, [path.join(root, 'node_modules/@playwright/test/cli.js'), 'test'], {
      cwd: path.join(root, kind),
      encoding: 'utf8',
      timeout: 180_000,
      env: { ...process.env, CI: '', DUT1_PW: 'unused', LABWRIGHT_LAB: '' },
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(path.join(root, kind, 'report.json'), 'utf8')) as { stats: { expected: number; unexpected: number } };
    expect(report.stats).toMatchObject({ expected: 2, unexpected: 0 });
  });

  test(`${kind}: a script uses labwright/core`, () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'script.ts'], {
      cwd: path.join(root, kind),
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, DUT1_PW: 'unused', NODE_PATH: '' },
    });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('from-core\n');
  });
}

test("inside Playwright nothing loads tsx: the lab file is loaded by Playwright's own TypeScript loader", () => {
  const trace = path.join(root, 'modules.txt');
  writeFileSync(
    path.join(root, 'trace-hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(${JSON.stringify(trace)}, resolved.url + '\\n');
  return resolved;
}
`,
  );
  writeFileSync(path.join(root, 'trace.mjs'), `import { register } from 'node:module';\nregister('./trace-hooks.mjs', import.meta.url);\n`);
  const run = spawnSync(process.execPath, [path.join(root, 'node_modules/@playwright/test/cli.js'), 'test'], {
    cwd: path.join(root, 'esm'),
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, CI: '', DUT1_PW: 'unused', LABWRIGHT_LAB: '', NODE_OPTIONS: `--import=${path.join(root, 'trace.mjs')}` },
  });
  expect(run.status, run.stdout + run.stderr).toBe(0);
  const modules = readFileSync(trace, 'utf8');
  // The trace sees labwright's modules (it works) and none of tsx or esbuild.
  expect(modules).toContain('/node_modules/labwright/dist/config/load.js');
  expect(modules).not.toMatch(/\/node_modules\/(tsx|esbuild)\//);
});

test('config fields are documented on hover, with units and defaults', () => {
  const dir = path.join(root, 'esm');
  const file = path.join(dir, 'lab.config.ts');
  const text = readFileSync(file, 'utf8');
  const service = ts.createLanguageService({
    getScriptFileNames: () => [file],
    getScriptVersion: () => '1',
    getScriptSnapshot: (name) => (ts.sys.fileExists(name) ? ts.ScriptSnapshot.fromString(ts.sys.readFile(name)!) : undefined),
    getCurrentDirectory: () => dir,
    getCompilationSettings: () => ({ module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, types: ['node'] }),
    getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
    fileExists: ts.sys.fileExists,
    readFile: ts.sys.readFile,
  });
  const hover = (word: string) => ts.displayPartsToString(service.getQuickInfoAtPosition(file, text.indexOf(word))?.documentation);
  expect(hover('connectTimeout: 5_000')).toMatch(/in ms\. Default 15000\./);
  expect(hover('port: 22')).toMatch(/Default 22\./);
  expect(hover('hostKeyPolicy')).toMatch(/Default `strict`/);
  expect(hover('commandTimeout')).toMatch(/per-command timeout .* in ms/);
  expect(hover('logs:')).toMatch(/when a test that used this host fails/);
  expect(hover("commands: ['uname")).toMatch(/Commands whose output is collected/);
  expect(hover('password:')).toMatch(/masked everywhere/);
  expect(hover('address:')).toMatch(/DNS name or IP address/);
});

test('the labwright bin runs from the installed package', () => {
  const bin = path.join(root, 'node_modules/.bin/labwright');
  const help = spawnSync(bin, ['--help'], { encoding: 'utf8', timeout: 30_000 });
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(
    /Commands:\n {2}check .*\n {2}run .*\n {2}shell .*\n {2}console .*\n {2}put .*\n {2}get .*\n {2}power .*\n {2}leases .*\n {2}trust /,
  );
  const run = spawnSync(bin, ['-l', path.join(root, 'esm/lab.config.ts'), 'run', 'local', '--', 'echo', 'from-the-bin'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, DUT1_PW: 'unused' },
  });
  expect(run.stderr).toBe('');
  expect(run.stdout).toBe('from-the-bin\n');
});
