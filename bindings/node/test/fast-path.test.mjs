// The fast path of `decide` (a request of plain values, encoded in
// index.js and read in one crossing) against the slow path (Node-API
// asked about every key and value): the same decision, field for field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { grant, repo } from './helpers.mjs';

const { Engine } = grant;
const require = createRequire(import.meta.url);
// The module index.js calls into: counted here, to know which path ran.
const native = require(path.join(repo, 'bindings', 'node', 'native.js'));

const engine = Engine.fromText('fast.grant', `
type sensitivity = public < internal < confidential
attr env: string
attr n: int
attr flag: bool
attr sensitivity: sensitivity
attr tags: set<string>
attr ids: set<int>
attr task.approved: bool
attr args.limit: int
attr args.path.dir: string
attr age: duration

@id("flagged")
@owner("ops")
allow tool "t" when flag and n >= 0 and env != "" and sensitivity <= internal and not ("x" in tags) and task.approved and age < 1h ttl 1m uses 3 approval "ops"
allow tool "u" when args.limit < 10 and args.path.dir == "/tmp" ttl 2h
deny tool "t" when env == "prod"
allow tool "v" ttl 10m
`);

const good = {
  env: 'dev', n: 1, flag: true, sensitivity: 'internal', tags: ['a'], task: { approved: true }, age: '5m',
};

/**
 * Which path `fn`'s one decide took: 'fast' (decided from the encoding),
 * 'deferred' (the encoding with values handed over as they are) or 'slow'.
 */
function pathOf(fn) {
  const { decideFast, decisionOfEncoded } = native;
  const taken = [];
  native.decideFast = (...args) => {
    const code = decideFast(...args);
    taken.push(code === -3 ? 'fast said slow' : 'fast');
    return code;
  };
  native.decisionOfEncoded = (...args) => {
    if (args[2] !== undefined) taken.push('deferred');
    return decisionOfEncoded(...args);
  };
  try {
    fn();
  } finally {
    Object.assign(native, { decideFast, decisionOfEncoded });
  }
  return taken.length === 0 ? 'slow' : taken.join(' ');
}

/** A copy that only the slow path reads: its prototype is not Object's. */
function slowTwin(request) {
  if (request.attrs === null || typeof request.attrs !== 'object' || Array.isArray(request.attrs)) return null;
  return { ...request, attrs: Object.assign(Object.create(null), request.attrs) };
}

function view(decision) {
  return {
    json: decision.toJSON(),
    allowed: decision.allowed,
    effect: decision.effect,
    ttlSeconds: decision.ttlSeconds,
    rules: decision.rules,
    reasons: decision.reasons,
    missing: decision.missing,
    errors: decision.errors,
    obligations: decision.obligations,
    policyHash: decision.policyHash,
  };
}

const BIG = 2 ** 60;
const requests = [
  ['valid, nested', { tool: 't', attrs: good }, 'fast'],
  ['valid, dotted', { tool: 't', attrs: { ...good, task: undefined, 'task.approved': true } }, 'deferred'],
  ['valid, dotted only', (() => { const { task, ...rest } = good; return { tool: 't', attrs: { ...rest, 'task.approved': true } }; })(), 'fast'],
  ['deny rule', { tool: 't', attrs: { ...good, env: 'prod' } }, 'fast'],
  ['default deny, unknown tool', { tool: 'nope', attrs: {} }, 'fast'],
  ['no attrs', { tool: 'v' }, 'fast'],
  ['null attrs', { tool: 'v', attrs: null }, 'fast'],
  ['nested groups', { tool: 'u', attrs: { args: { limit: 3, path: { dir: '/tmp' } } } }, 'fast'],
  ['dotted + nested mix', { tool: 'u', attrs: { 'args.limit': 3, args: { path: { dir: '/tmp' } } } }, 'fast'],
  ['dotted inside nested', { tool: 'u', attrs: { args: { limit: 3, 'path.dir': '/tmp' } } }, 'fast'],
  ['duplicate, dotted and nested', { tool: 'u', attrs: { 'args.limit': 3, args: { limit: 4 } } }, 'fast'],
  ['duplicate with null', { tool: 't', attrs: { task: null, 'task.approved': true } }, 'fast'],
  ['null attribute', { tool: 't', attrs: { ...good, flag: null } }, 'fast'],
  ['null group', { tool: 'u', attrs: { args: null } }, 'fast'],
  ['undeclared null', { tool: 't', attrs: { nope: null } }, 'fast'],
  ['wrong type', { tool: 't', attrs: { ...good, n: 'one' } }, 'fast'],
  ['bool for int', { tool: 't', attrs: { ...good, n: true } }, 'fast'],
  ['object for a value', { tool: 't', attrs: { ...good, n: { x: 1 } } }, 'fast'],
  ['undeclared', { tool: 't', attrs: { ...good, nope: 1 } }, 'fast'],
  ['undeclared group', { tool: 't', attrs: { ...good, deep: { x: 1 } } }, 'fast'],
  ['negative int', { tool: 't', attrs: { ...good, n: -5 } }, 'fast'],
  ['int at 2^53 - 1', { tool: 't', attrs: { ...good, n: Number.MAX_SAFE_INTEGER } }, 'fast'],
  ['negative int at -(2^53 - 1)', { tool: 't', attrs: { ...good, n: Number.MIN_SAFE_INTEGER } }, 'fast'],
  ['big int beyond 2^53', { tool: 't', attrs: { ...good, n: BIG } }, 'deferred'],
  ['int beyond 2^64', { tool: 't', attrs: { ...good, n: 2 ** 64 } }, 'deferred'],
  ['fraction', { tool: 't', attrs: { ...good, n: 1.5 } }, 'deferred'],
  ['-0', { tool: 't', attrs: { ...good, n: -0 } }, 'fast'],
  ['empty string', { tool: 't', attrs: { ...good, env: '' } }, 'fast'],
  ['empty key', { tool: 't', attrs: { ...good, '': 'x' } }, 'fast'],
  ['key like a marker', { tool: 't', attrs: { ...good, '}': 'x', k: '{' } }, 'fast'],
  ['unicode', { tool: 't', attrs: { ...good, env: 'größe 日本 🦀', 'ünï': 1 } }, 'fast'],
  ['lone surrogate', { tool: 't', attrs: { ...good, env: 'a\uD800b' } }, 'fast'],
  ['lone surrogates at ends', { tool: 't\uDC00', attrs: { ...good, env: '\uDC00a\uD800', '\uD800': '\uDFFF\uD83E' }, ttl: '\uD800' }, 'fast'],
  ['a pair split by a separator', { tool: 't', attrs: { ...good, env: '\uD83E', n: '\uDD80' } }, 'fast'],
  ['separator in a string', { tool: 't', attrs: { ...good, env: 'a\u0001b' } }, 'deferred'],
  ['separator in a key', { tool: 't', attrs: { ...good, 'a\u0001': 1 } }, 'slow'],
  ['array for a set', { tool: 't', attrs: { ...good, tags: ['a', 'b', 'a'] } }, 'fast'],
  ['empty array', { tool: 't', attrs: { ...good, tags: [] } }, 'fast'],
  ['array with x', { tool: 't', attrs: { ...good, tags: ['x'] } }, 'fast'],
  ['ints in a string set', { tool: 't', attrs: { ...good, tags: [1, 2] } }, 'fast'],
  ['int set', { tool: 't', attrs: { ...good, ids: [1, -2, 3] } }, 'fast'],
  ['mixed set', { tool: 't', attrs: { ...good, ids: [1, 'a', true] } }, 'fast'],
  ['bools in a set', { tool: 't', attrs: { ...good, tags: [true, false] } }, 'fast'],
  ['array for a scalar', { tool: 't', attrs: { ...good, env: ['a'] } }, 'fast'],
  ['array for a group', { tool: 'u', attrs: { args: [1] } }, 'fast'],
  ['null in a set', { tool: 't', attrs: { ...good, tags: [null] } }, 'deferred'],
  ['fraction in a set', { tool: 't', attrs: { ...good, tags: [1.5] } }, 'deferred'],
  ['nested array', { tool: 't', attrs: { ...good, tags: [['a']] } }, 'deferred'],
  ['holey array', { tool: 't', attrs: { ...good, tags: [, 'a'] } }, 'deferred'], // eslint-disable-line no-sparse-arrays
  ['long array', { tool: 't', attrs: { ...good, tags: Array.from({ length: 100 }, (_, i) => `t${i}`) } }, 'deferred'],
  ['a Set', { tool: 't', attrs: { ...good, tags: new Set(['a']) } }, 'deferred'],
  ['ttl string', { tool: 't', attrs: good, ttl: '30s' }, 'fast'],
  ['ttl number', { tool: 't', attrs: good, ttl: 20 }, 'fast'],
  ['ttl zero', { tool: 't', attrs: good, ttl: 0 }, 'fast'],
  ['ttl over the rule', { tool: 't', attrs: good, ttl: '2h' }, 'fast'],
  ['ttl bad string', { tool: 't', attrs: good, ttl: 'soon' }, 'fast'],
  ['ttl empty string', { tool: 't', attrs: good, ttl: '' }, 'fast'],
  ['ttl negative', { tool: 't', attrs: good, ttl: -1 }, 'fast'],
  ['ttl fraction', { tool: 't', attrs: good, ttl: 1.5 }, 'slow'],
  ['ttl null', { tool: 't', attrs: good, ttl: null }, 'fast'],
  ['ttl bool', { tool: 't', attrs: good, ttl: true }, 'slow'],
  ['ttl without attrs', { tool: 'v', ttl: '1m' }, 'fast'],
  ['ttl with errors', { tool: 't', attrs: { ...good, n: 'one' }, ttl: 'soon' }, 'fast'],
  ['long string', { tool: 't', attrs: { ...good, env: 'x'.repeat(70_000) } }, 'fast'],
  ['BigInt', { tool: 't', attrs: { ...good, n: 2n } }, 'deferred'],
  ['undefined', { tool: 't', attrs: { ...good, n: undefined } }, 'deferred'],
  ['a class instance', { tool: 't', attrs: { ...good, task: new (class { constructor() { this.approved = true; } })() } }, 'deferred'],
  ['an unknown field', { tool: 't', attrs: good, tools: 'x' }, 'slow'],
  ['a tool with unicode', { tool: 'tö🦀', attrs: {} }, 'fast'],
  ['deep nesting', { tool: 'u', attrs: { args: { path: { dir: { a: { b: { c: 1 } } } } } } }, 'deferred'],
  ['many keys', { tool: 't', attrs: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i])) }, 'fast'],
];

test('the fast path decides as the slow path, field for field', () => {
  for (const [name, request, expected] of requests) {
    let decision;
    assert.equal(pathOf(() => { decision = engine.decide(request); }), expected, name);
    const twin = slowTwin(request);
    if (twin === null) continue;
    let slow;
    assert.equal(pathOf(() => { slow = engine.decide(twin); }), 'slow', `${name}: the twin`);
    assert.deepStrictEqual(view(decision), view(slow), name);
  }
});

test('the fast path agrees with the slow path on inputs without attrs', () => {
  // No twin can be made of these: compare with a request whose attrs are
  // an empty null-prototype object, which the slow path reads as none.
  for (const request of [{ tool: 'v' }, { tool: 'v', ttl: 5 }, { tool: 'x', ttl: 'bad' }]) {
    const fast = engine.decide(request);
    const slow = engine.decide({ ...request, attrs: Object.create(null) });
    assert.deepStrictEqual(view(fast), view(slow));
  }
});

test('a decision made before another decide keeps its own fields', () => {
  const first = engine.decide({ tool: 't', attrs: good, ttl: '30s' });
  const second = engine.decide({ tool: 't', attrs: { ...good, env: 'prod' } });
  const third = engine.decide({ tool: 't', attrs: { ...good, n: 'one' } });
  assert.equal(first.allowed, true);
  assert.equal(first.ttlSeconds, 30);
  assert.deepEqual(first.rules.map((r) => r.id), ['flagged']);
  assert.deepEqual(first.obligations, { uses: 3, approvals: ['ops'] });
  assert.deepEqual(first.errors, []);
  assert.equal(second.allowed, false);
  assert.equal(second.ttlSeconds, null);
  assert.equal(second.rules.length, 1);
  assert.equal(third.allowed, false);
  assert.equal(third.errors.length, 1);
  // A request changed after the decision does not change it.
  const attrs = { ...good };
  const fourth = engine.decide({ tool: 't', attrs });
  attrs.env = 'prod';
  assert.equal(fourth.allowed, true);
  assert.deepEqual(fourth.toJSON(), engine.decide({ tool: 't', attrs: good }).toJSON());
  assert.equal(first.toJSON().ttl_seconds, 30);
});

test('a getter in attrs is read once, and its throw denies', () => {
  let reads = 0;
  const attrs = { ...good };
  Object.defineProperty(attrs, 'env', { enumerable: true, get() { reads++; return 'dev'; } });
  const decision = engine.decide({ tool: 't', attrs: { ...attrs, tags: new Set(['a']) } });
  assert.equal(decision.allowed, true);
  reads = 0;
  assert.equal(engine.decide({ tool: 't', attrs }).allowed, true);
  assert.equal(reads, 1);
  const throwing = {};
  Object.defineProperty(throwing, 'env', { enumerable: true, get() { throw new Error('boom'); } });
  assert.match(engine.decide({ tool: 't', attrs: throwing }).errors[0], /reading the request threw: boom/);
});

test('deferred values are read once, in order, and kept from later changes', () => {
  const tags = new Set(['a']);
  const decision = engine.decide({ tool: 't', attrs: { ...good, tags } });
  tags.add('x');
  assert.equal(decision.allowed, true);
  assert.deepEqual(decision.errors, []);
  // The first throw wins, as in the slow path: a Set whose iterator
  // throws, before a getter that throws.
  const throwingSet = new Set(['a']);
  throwingSet[Symbol.iterator] = () => { throw new Error('first'); };
  const attrs = { ...good, tags: throwingSet };
  Object.defineProperty(attrs, 'zzz', { enumerable: true, get() { throw new Error('second'); } });
  assert.match(engine.decide({ tool: 't', attrs }).errors[0], /reading the request threw: first/);
  // A nested Proxy is handed over, its traps run by the slow reader.
  const proxy = new Proxy({ approved: true }, {});
  const viaProxy = engine.decide({ tool: 't', attrs: { ...good, task: proxy } });
  assert.deepStrictEqual(viaProxy.toJSON(), engine.decide({ tool: 't', attrs: good }).toJSON());
});

test('over the size limit, the fast path words the error as the slow path', () => {
  const huge = { ...good };
  for (let i = 0; i < 100_000; i++) huge[`k${i}`] = 'x'.repeat(10);
  const fast = engine.decide({ tool: 't', attrs: huge });
  const slow = engine.decide({ tool: 't', attrs: Object.assign(Object.create(null), huge) });
  assert.match(fast.errors[0], /bytes of JSON, over the limit/);
  assert.deepStrictEqual(fast.toJSON(), slow.toJSON());
  const deep = {};
  let at = deep;
  for (let i = 0; i < 1000; i++) at = at.a = {};
  const tooDeep = engine.decide({ tool: 't', attrs: { ...good, deep } });
  assert.deepStrictEqual(
    tooDeep.toJSON(),
    engine.decide({ tool: 't', attrs: Object.assign(Object.create(null), { ...good, deep }) }).toJSON(),
  );
  assert.match(tooDeep.errors[0], /nests objects more than 128 deep/);
});

test("values are read once each, in the slow path's order", () => {
  const run = (proto) => {
    const log = [];
    const getter = (name, value) => ({ enumerable: true, get() { log.push(name); return value; } });
    const task = new (class Task {})();
    Object.defineProperty(task, 'approved', getter('task.approved', true));
    const tags = ['a', 1.5, 'b'];
    Object.defineProperty(tags, 2, getter('tags[2]', 'b'));
    const ids = [1, 2];
    Object.defineProperty(ids, 1, getter('ids[1]', 2));
    const attrs = Object.create(proto);
    Object.defineProperty(attrs, 'env', getter('env', 'dev'));
    Object.defineProperty(attrs, 'ids', getter('ids', ids));
    Object.defineProperty(attrs, 'tags', getter('tags', tags));
    Object.defineProperty(attrs, 'task', getter('task', task));
    Object.defineProperty(attrs, 'n', getter('n', 1));
    attrs.args = { limit: 1, path: new Proxy({ dir: '/tmp' }, { get(t, k) { log.push(`args.path.${String(k)}`); return t[k]; } }) };
    Object.defineProperty(attrs, 'flag', getter('flag', true));
    let decision;
    const path = pathOf(() => { decision = engine.decide({ tool: 't', attrs }); });
    return { path, log, json: decision.toJSON() };
  };
  const fast = run(Object.prototype);
  const slow = run(null);
  assert.equal(fast.path, 'deferred');
  assert.equal(slow.path, 'slow');
  assert.deepStrictEqual(fast.log, slow.log);
  assert.deepStrictEqual(fast.json, slow.json);
  assert.ok(!fast.log.includes('tags[2]'), 'an element after a bad one is not read');
});

test('a decide from inside a decide (a Set iterator of the caller) decides on its own', () => {
  let inner = null;
  const tags = new Set(['a']);
  tags[Symbol.iterator] = function* () {
    inner = engine.decide({ tool: 't', attrs: { ...good, env: 'prod' } });
    assert.equal(inner.toJSON().effect, 'deny');
    yield 'a';
  };
  const outer = engine.decide({ tool: 't', attrs: { ...good, tags } });
  assert.equal(outer.allowed, true);
  assert.deepStrictEqual(outer.toJSON(), engine.decide({ tool: 't', attrs: good }).toJSON());
  assert.equal(inner.allowed, false);
  assert.deepEqual(inner.rules.map((r) => r.effect), ['deny']);
});

test('a decision read after other decides (fast, handed-over, slow, another engine) is its own', () => {
  const other = Engine.fromText('other.grant', 'attr env: string\nallow tool "t" when env == "prod" ttl 5m\n');
  const expected = engine.decide({ tool: 't', attrs: twinAttrs(good) }).toJSON();
  const later = [
    () => engine.decide({ tool: 't', attrs: { ...good, env: 'prod' } }),
    () => engine.decide({ tool: 't', attrs: { ...good, tags: new Set(['x']) } }),
    () => engine.decide({ tool: 't', attrs: good, tools: 1 }),
    () => engine.decide({ tool: 't', attrs: twinAttrs({ ...good, n: 'one' }) }),
    () => other.decide({ tool: 't', attrs: { env: 'prod' } }),
    () => engine.explain({ tool: 't', attrs: { ...good, env: 'prod' } }),
  ];
  for (const [i, run] of later.entries()) {
    const first = engine.decide({ tool: 't', attrs: good });
    const then = run();
    assert.deepStrictEqual(first.toJSON(), expected, `after later decide ${i}`);
    if (typeof then !== 'string') then.toJSON();
  }
  // Read right after its decide, and again after others.
  const first = engine.decide({ tool: 't', attrs: good });
  assert.deepStrictEqual(first.toJSON(), expected);
  engine.decide({ tool: 't', attrs: { ...good, env: 'prod' } }).toJSON();
  assert.deepStrictEqual(first.toJSON(), expected);
});

function twinAttrs(attrs) {
  return Object.assign(Object.create(null), attrs);
}
