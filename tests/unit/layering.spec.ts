/** The layering rule of docs/ARCHITECTURE.md is enforced by ESLint; prove the rule bites. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { repoRoot } from '../helpers/inlineTest.js';

const probes: [string, string, RegExp][] = [
  ['src/session/__probe.ts', "import { Lab } from '../host/lab.js';\nexport const x = Lab;\n", /src\/session\/ must not import from higher layers/],
  ['src/host/__probe.ts', "import { test } from '@playwright/test';\nexport const x = test;\n", /Only src\/playwright\/ may import Playwright/],
  [
    'src/config/__probe.ts',
    "import { ShellSession } from '../session/shellSession.js';\nexport const x = ShellSession;\n",
    /src\/config\/ must not import from higher layers/,
  ],
  ['src/lease/__probe.ts', "import { Lab } from '../host/lab.js';\nexport const x = Lab;\n", /src\/lease\/ must not import from higher layers/],
];

for (const [file, source, message] of probes) {
  test(`lint refuses ${file.split('/')[1]} importing upward`, () => {
    const full = path.join(repoRoot, file);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, source);
    try {
      const result = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/eslint/bin/eslint.js'), file], { cwd: repoRoot, encoding: 'utf8' });
      expect(result.status).toBe(1);
      expect(result.stdout).toMatch(message);
    } finally {
      rmSync(full, { force: true });
    }
  });
}
