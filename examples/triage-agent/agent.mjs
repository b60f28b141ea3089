#!/usr/bin/env node
// An on-call triage agent, without a model: a scripted plan of tool calls
// whose tools are async functions guarded by Grant (the Node.js binding's
// `guard`). Each call is decided against policy.grant and recorded in a
// ledger: the first allowed call of a tool requests a grant, later calls
// reuse it while it lasts. At the end the task's audit timeline is printed.
//
//   node examples/triage-agent/agent.mjs [--store URL]
//
// URL is `memory`, `sqlite:PATH` or `postgres://...`; by default a SQLite
// file in a fresh temp directory. Build the binding first:
// (cd bindings/node && npm install && npm run build).

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { Engine, Ledger, guard, Denied } = require(path.join(here, '..', '..', 'bindings', 'node'));

function storeFromArgs(argv) {
  const at = argv.indexOf('--store');
  if (at >= 0) {
    if (!argv[at + 1]) throw new Error('--store needs a URL');
    return { url: argv[at + 1], cleanup: () => {} };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'triage-agent-'));
  return { url: `sqlite:${path.join(dir, 'ledger.db')}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const short = (id) => (id ? `${id.slice(0, 14)}…` : '-');

async function main() {
  const store = storeFromArgs(process.argv.slice(2));
  const engine = Engine.load(path.join(here, 'policy.grant'));
  const ledger = await Ledger.open(store.url, engine, { actor: 'triage-runtime' });
  const agent = 'triage-agent';
  const task = await ledger.openTask({ agent, labels: { incident: 'INC-4711' } });
  console.log(`policy ${engine.policyHash.slice(0, 19)}…  store ${store.url}`);
  console.log(`task ${task.taskId} opened for ${agent}\n`);

  // The agent's tools. The runtime fixes `env` for the whole task; each
  // call's arguments are read as the policy's `args.*` attributes.
  const tool = (name, fn) => guard(ledger, { task, agent, tool: name, attrs: { env: 'staging' } }, fn);
  const logs = {
    search: tool('logs.search', async ({ service, sensitivity, limit }) =>
      `${Math.min(limit, 3)} ${sensitivity} log lines of ${service}: "upstream timeout" ×3`),
  };
  const metrics = {
    query: tool('metrics.query', async ({ service }) => `${service} p99 latency 840 ms (baseline 120 ms)`),
  };
  const tickets = {
    comment: tool('tickets.comment', async ({ text }) => `commented: ${text}`),
  };
  const deploy = {
    rollback: tool('deploy.rollback', async ({ service }) => `rolled ${service} back to the previous release`),
  };

  const plan = [
    ['logs.search', logs.search, { service: 'checkout', sensitivity: 'internal', limit: 100 }],
    ['metrics.query', metrics.query, { service: 'checkout' }],
    ['logs.search', logs.search, { service: 'checkout', sensitivity: 'internal', limit: 50 }],
    ['logs.search', logs.search, { service: 'payments', sensitivity: 'confidential', limit: 20 }],
    ['tickets.comment', tickets.comment, { text: 'p99 latency of checkout up 7x since 14:02' }],
    ['tickets.comment', tickets.comment, { text: 'upstream timeouts in the checkout logs' }],
    { wait: 2200, why: 'the 2 s log-search grant expires meanwhile' },
    ['logs.search', logs.search, { service: 'checkout', sensitivity: 'public', limit: 200 }],
    ['tickets.comment', tickets.comment, { text: 'rolling back checkout on staging' }],
    ['deploy.rollback', deploy.rollback, { service: 'checkout' }],
    ['tickets.comment', tickets.comment, { text: 'rollback done; latency back to baseline' }],
  ];

  const held = new Map(); // tool -> the grant its last allowed call used
  let step = 0;
  for (const entry of plan) {
    if (!Array.isArray(entry)) {
      console.log(`   … waiting ${entry.wait} ms: ${entry.why}`);
      await sleep(entry.wait);
      continue;
    }
    const [name, fn, args] = entry;
    step += 1;
    try {
      const result = await fn(args);
      const { grantId, issued, usesLeft } = fn.lastAdmission;
      const previous = held.get(name);
      let how = issued ? 'new grant' : 'reused grant';
      if (issued && previous) {
        const before = await ledger.grant(previous);
        how = `grant re-issued (the previous one is ${before.state})`;
      }
      held.set(name, grantId);
      const uses = usesLeft === null ? '' : `, ${usesLeft} use(s) left`;
      console.log(`${String(step).padStart(2)} ALLOW ${name.padEnd(16)} ${how} ${short(grantId)}${uses}`);
      console.log(`         -> ${result}`);
    } catch (error) {
      if (!(error instanceof Denied)) throw error;
      const rule = error.decision?.rules[0];
      const why = rule?.annotations.reason ? ` (${rule.annotations.reason})` : '';
      console.log(`${String(step).padStart(2)} DENY  ${name.padEnd(16)} by rule ${rule?.id ?? '(none)'}${why}: ${error.reason}`);
    }
  }

  await ledger.endTask(task.taskId);
  const events = await ledger.timeline(task.taskId);
  console.log(`\naudit timeline of ${task.taskId} (${events.length} events)`);
  console.log(`${'seq'.padStart(4)}  ${'event'.padEnd(18)} ${'tool'.padEnd(16)} ${'grant'.padEnd(16)} effect`);
  for (const event of events) {
    console.log(
      `${String(event.seq).padStart(4)}  ${event.type.padEnd(18)} ${(event.tool ?? '-').padEnd(16)} ${short(event.grantId).padEnd(16)} ${event.decision?.effect ?? '-'}`,
    );
  }
  const verification = await ledger.verify();
  console.log(`\naudit chain ${verification.intact ? 'intact' : 'BROKEN'}: ${verification.events} events`);
  await ledger.close();
  store.cleanup();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
