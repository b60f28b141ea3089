// Node.js: `engine.decide` against a native no-op that takes the same
// request object (`__noop`, the cost of crossing into the addon at all),
// measured in one process, interleaved, several repeats; prints the median
// ns/op of each and their ratio. Target: decide <= 3x the no-op.
//
//   (cd bindings/node && npm install && npm run build)
//   node benches/bindings/node_decide.mjs [--repeats N] [--iterations N]
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const require = createRequire(import.meta.url);
const { Engine, __noop } = require(path.join(repo, 'bindings', 'node'));

const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const repeats = arg('--repeats', 7);
const iterations = arg('--iterations', 200_000);

const engine = Engine.load(path.join(repo, 'examples', 'triage-agent', 'policy.grant'));
// Three attributes; the same object goes to both calls.
const dotted = {
  tool: 'logs.search',
  attrs: { env: 'staging', 'args.sensitivity': 'internal', 'args.limit': 100 },
};
const nested = {
  tool: 'logs.search',
  attrs: { env: 'staging', args: { sensitivity: 'internal', limit: 100 } },
};
if (!engine.decide(dotted).allowed || !engine.decide(nested).allowed) throw new Error('the bench request must be allowed');

let sink = 0;
const cases = {
  noop: (r) => { __noop(r); },
  decide: (r) => { sink += engine.decide(r).allowed ? 1 : 0; },
  'decide+toJSON': (r) => { sink += engine.decide(r).toJSON().rules.length; },
};

function time(fn, request) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(request);
  return Number(process.hrtime.bigint() - start) / iterations;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

for (const [label, request] of [['3 attributes, dotted keys', dotted], ['3 attributes, nested `args` object', nested]]) {
  const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const fn of Object.values(cases)) time(fn, request); // warm-up
  for (let r = 0; r < repeats; r++) {
    // Interleaved, the order turned each repeat.
    const names = Object.keys(cases);
    if (r % 2) names.reverse();
    for (const name of names) samples[name].push(time(cases[name], request));
  }
  const noop = median(samples.noop);
  console.log(`${label} (${repeats} repeats x ${iterations} calls, median ns/op)`);
  for (const name of Object.keys(cases)) {
    const m = median(samples[name]);
    console.log(`  ${name.padEnd(14)} ${m.toFixed(1).padStart(8)} ns/op   ${(m / noop).toFixed(2)}x no-op`);
  }
}
const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0].model}), load average ${load}`);
if (sink < 0) console.log(sink);
