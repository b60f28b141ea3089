// Bad input where a decision is asked for denies, with errors saying what
// and where; only a call of the wrong shape throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { grant, policies, repo, tempDir } from './helpers.mjs';

const { Engine, PolicyError } = grant;
const engine = Engine.load(path.join(policies, 'types.grant'));
const good = {
  env: 'dev', n: 1, flag: true, sensitivity: 'internal', tags: ['a'], task: { approved: true }, age: '5m',
};
const decide = (attrs, extra = {}) => engine.decide({ tool: 't', attrs, ...extra });

function denies(attrs, pattern, extra) {
  const decision = decide(attrs, extra);
  assert.equal(decision.allowed, false);
  assert.equal(decision.effect, 'deny');
  assert.ok(decision.errors.some((e) => pattern.test(e)), `no error matches ${pattern}: ${JSON.stringify(decision.errors)}`);
  return decision;
}

test('a good request is allowed, nested or dotted, with arrays or Sets', () => {
  assert.equal(decide(good).allowed, true);
  const { task, ...rest } = good;
  assert.equal(decide({ ...rest, 'task.approved': true }).allowed, true);
  assert.equal(decide({ ...good, tags: new Set(['a', 'b']) }).allowed, true);
  assert.equal(decide(good, { ttl: '30s' }).ttlSeconds, 30);
  assert.equal(decide(good, { ttl: 20 }).ttlSeconds, 20);
});

test('wrong JS types deny with the attribute named', () => {
  denies({ ...good, n: 1.5 }, /attribute `n`: 1\.5 is not an integer/);
  denies({ ...good, n: 'one' }, /attribute `n` expects `int`, found string "one"/);
  denies({ ...good, n: 2n }, /attribute `n`: a BigInt is not a value/);
  denies({ ...good, n: Symbol('s') }, /attribute `n`: a Symbol is not a value/);
  denies({ ...good, n: () => 1 }, /attribute `n`: a function is not a value/);
  denies({ ...good, n: undefined }, /attribute `n`: `undefined` is not a value/);
  denies({ ...good, n: { x: 1 } }, /attribute `n` expects a value, found an object/);
  denies({ ...good, flag: 1 }, /attribute `flag` expects `bool`/);
  denies({ ...good, sensitivity: 'secret' }, /expects a variant of `sensitivity`/);
  denies({ ...good, tags: [1.5] }, /attribute `tags`: a set holds strings, integers and booleans, found a fractional number/);
  denies({ ...good, tags: [null] }, /found `null`/);
  denies({ ...good, age: 'soon' }, /attribute `age` expects a duration/);
  denies({ ...good, n: 2 ** 64 }, /above 9223372036854775807/);
  denies(good, /`ttl` expects a duration/, { ttl: 'soon' });
  denies(good, /`ttl` of -1 seconds is negative/, { ttl: -1 });
  denies(good, /unknown request field `tools`/, { tools: 'x' });
  denies('nope', /`attrs` must be an object/);
  denies([1], /`attrs` must be an object/);
});

test('a getter that throws denies, with what it threw', () => {
  const attrs = { ...good };
  Object.defineProperty(attrs, 'env', { enumerable: true, get() { throw new Error('boom'); } });
  denies(attrs, /reading the request threw: boom/);
  const proxy = new Proxy({}, { ownKeys() { throw new Error('no keys'); } });
  denies(proxy, /reading the request threw: no keys/);
});

test('null leaves an attribute missing, as in JSON', () => {
  const decision = decide({ ...good, flag: null });
  assert.equal(decision.allowed, false);
  assert.deepEqual(decision.errors, []);
  assert.deepEqual(decision.missing, ['flag']);
  const { task, ...rest } = good;
  denies({ ...rest, task: null, 'task.approved': true }, /attribute `task.approved` is given twice/);
});

test('undeclared attributes deny', () => {
  denies({ ...good, nope: 1 }, /attribute `nope` is not declared by the policy/);
  denies({ ...good, deep: { x: 1 } }, /no declared attribute starts with `deep\.`/);
});

test('a huge object denies with the size limit', () => {
  const huge = { ...good };
  for (let i = 0; i < 200_000; i++) huge[`k${i}`] = 'x'.repeat(10);
  denies(huge, /bytes of JSON, over the limit of 1048576/);
  denies({ ...good, env: 'x'.repeat(70_000) }, /has a string of 70000 bytes, over the limit/);
  denies({ ...good, tags: Array.from({ length: 10_001 }, (_, i) => `t${i}`) }, /a set of 10001 elements, over the limit of 10000/);
});

test('1000-deep nesting denies without overflowing the stack', () => {
  let deep = {};
  const root = deep;
  for (let i = 0; i < 1000; i++) deep = deep.a = {};
  const decision = denies(root, /nests objects more than 128 deep/);
  assert.equal(decision.errors.length, 1);
});

test('only a call of the wrong shape throws', () => {
  assert.throws(() => engine.decide(), TypeError);
  assert.throws(() => engine.decide(null), TypeError);
  assert.throws(() => engine.decide({ attrs: {} }), TypeError);
  assert.throws(() => engine.decide({ tool: 1 }), TypeError);
  assert.equal(engine.decide({ tool: '' }).allowed, false);
});

test('the binding reads JSON-expressible bad input as grant eval does', (t) => {
  const grantBin = process.env.GRANT_BIN || path.join(repo, 'target', 'debug', 'grant');
  if (!existsSync(grantBin)) return t.skip('no grant binary');
  const dir = tempDir(t);
  const policy = path.join(policies, 'types.grant');
  const requests = [
    { tool: 't', attrs: { ...good, n: 1.5 } },
    { tool: 't', attrs: { ...good, n: { x: 1 }, nope: true, deep: { x: null } } },
    { tool: 't', attrs: { ...good, tags: ['a', 1.5] }, ttl: 'soon' },
    { tool: 't', attrs: { ...good, flag: null } },
    { tool: 't', attrs: { ...good, 'task.approved': false } },
    { tool: 't', attrs: { ...good, sensitivity: 'secret', age: -3 }, ttl: 0 },
  ];
  requests.forEach((request, i) => {
    const file = path.join(dir, `r${i}.json`);
    writeFileSync(file, JSON.stringify(request));
    let printed;
    try {
      printed = execFileSync(grantBin, ['eval', '--policy', policy, '--request', file], { encoding: 'utf8' });
    } catch (error) {
      printed = error.stdout;
    }
    assert.deepStrictEqual(engine.decide(request).toJSON(), JSON.parse(printed), JSON.stringify(request));
  });
});

test('a missing policy path throws ENOENT', () => {
  const missing = path.join(policies, 'no-such.grant');
  assert.throws(() => Engine.load(missing), (error) => {
    assert.equal(error.code, 'ENOENT');
    assert.match(error.message, /^ENOENT: no such file or directory/);
    assert.ok(error.message.includes(missing));
    return true;
  });
});

test('a policy with errors throws PolicyError with diagnostics', () => {
  assert.throws(() => Engine.load(path.join(policies, 'broken.grant')), (error) => {
    assert.ok(error instanceof PolicyError);
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'PolicyError');
    assert.match(error.message, /nope/);
    const first = error.diagnostics.find((d) => d.severity === 'error');
    assert.match(first.code, /^G\d{4}$/);
    assert.equal(first.line, 3);
    assert.equal(first.column, 21);
    assert.ok(first.file.endsWith('broken.grant'));
    return true;
  });
  assert.throws(() => Engine.fromText('inline.grant', 'allow tool "t" when'), PolicyError);
});

test('explain tells the rules', () => {
  const text = decide(good).explain();
  // The text `grant eval --explain` prints (grant_engine::Explainer).
  assert.match(text, /^decision {2}ALLOW for /);
  assert.match(text, /\nallow flagged {2}APPLIES/);
  assert.match(text, /given {4}flag = true\n {15}n = 1\n/);
});
