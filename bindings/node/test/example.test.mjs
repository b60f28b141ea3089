// The triage agent example, run as a user runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { repo } from './helpers.mjs';

test('examples/triage-agent/agent.mjs runs its plan and prints the timeline', () => {
  const started = Date.now();
  const out = execFileSync(process.execPath, [path.join(repo, 'examples', 'triage-agent', 'agent.mjs')], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.ok(Date.now() - started < 10_000, 'the example takes under 10 s');
  // The confidential search is denied, with its rule and reason.
  assert.match(out, /DENY {2}logs\.search +by rule no-confidential-logs \(confidential logs stay out of an agent's context\): deny rule `no-confidential-logs` applies/);
  // The 2 s log-search grant expired and was issued anew.
  assert.match(out, /ALLOW logs\.search +grant re-issued \(the previous one is expired\)/);
  // The comment grant's three uses ran out, and the fourth comment got a new grant.
  assert.match(out, /ALLOW tickets\.comment +reused grant .*0 use\(s\) left/);
  assert.match(out, /ALLOW tickets\.comment +grant re-issued \(the previous one is exhausted\)/);
  assert.match(out, /ALLOW deploy\.rollback/);
  // The timeline, from the task's opening to its end.
  assert.match(out, /audit timeline of task_/);
  assert.match(out, /task\.opened/);
  assert.match(out, /grant\.use_refused +logs\.search +grant_\S+ +deny/);
  assert.match(out, /grant\.used +deploy\.rollback/);
  assert.match(out, /task\.ended/);
  assert.match(out, /audit chain intact/);
});
