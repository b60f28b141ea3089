// Shared by the tests: where the repository is, the binding, temp dirs.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..', '..');
export const policies = path.join(here, 'policies');

const require = createRequire(import.meta.url);
// As a user does: the package folder, from the repository root.
export const grant = require(path.join(repo, 'bindings', 'node'));

/** A temp directory removed when the test ends. */
export function tempDir(t) {
  const dir = mkdtempSync(path.join(tmpdir(), 'grant-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
