// Every example request, decided through the binding, must give exactly
// the decision `grant eval` prints for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { grant, repo } from './helpers.mjs';

const grantBin = process.env.GRANT_BIN || path.join(repo, 'target', 'debug', 'grant');
const examples = path.join(repo, 'examples');

const cases = [];
for (const dir of readdirSync(examples).sort()) {
  const requests = path.join(examples, dir, 'requests');
  if (!existsSync(requests)) continue;
  for (const file of readdirSync(requests).sort()) {
    if (file.endsWith('.json')) cases.push({ dir: path.join(examples, dir), file: path.join(requests, file) });
  }
}

test('the example requests are found', () => {
  assert.ok(cases.length >= 35, `only ${cases.length} example requests`);
});

test('the grant binary is built', () => {
  assert.ok(existsSync(grantBin), `no grant binary at ${grantBin}: run \`cargo build -p grant-cli\` at the repository root, or set GRANT_BIN`);
});

const engines = new Map();
for (const { dir, file } of cases) {
  test(`${path.relative(repo, file)} decides as grant eval`, { skip: !existsSync(grantBin) }, () => {
    if (!engines.has(dir)) engines.set(dir, grant.Engine.load(dir));
    const engine = engines.get(dir);
    const request = JSON.parse(readFileSync(file, 'utf8'));
    const decision = engine.decide({ tool: request.tool, attrs: request.attrs, ttl: request.ttl });
    let printed;
    try {
      printed = execFileSync(grantBin, ['eval', '--policy', dir, '--request', file], { encoding: 'utf8' });
    } catch (error) {
      // A deny exits non-zero; its decision is still printed.
      printed = error.stdout;
    }
    const expected = JSON.parse(printed);
    assert.deepStrictEqual(decision.toJSON(), expected);
    // The camelCase fields agree with the JSON.
    assert.equal(decision.effect, expected.effect);
    assert.equal(decision.allowed, expected.effect === 'allow');
    assert.equal(decision.ttlSeconds, expected.ttl_seconds);
    assert.deepStrictEqual(decision.rules, expected.rules.map((r) => ({ id: r.id, effect: r.effect, annotations: r.annotations ?? {} })));
    assert.deepStrictEqual(decision.reasons, expected.reasons);
    assert.deepStrictEqual(decision.missing, expected.missing);
    assert.deepStrictEqual(decision.errors, expected.errors);
    assert.equal(decision.policyHash, expected.policy_hash);
    assert.equal(decision.policyHash, engine.policyHash);
    if (expected.obligations) {
      assert.deepStrictEqual(decision.obligations, {
        ...(expected.obligations.uses !== undefined ? { uses: expected.obligations.uses } : {}),
        approvals: expected.obligations.approvals ?? [],
      });
    } else {
      assert.equal(decision.obligations, null);
    }
    assert.match(decision.explain(), expected.effect === 'allow' ? /^decision {2}ALLOW/ : /^decision {2}DENY/);
  });
}
