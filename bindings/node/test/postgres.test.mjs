// The binding over the PostgreSQL store: the same ledger, guard and audit
// chain as over SQLite, in a schema of its own on GRANT_TEST_PG_URL (which
// .ci/run starts and sets). Without it the test skips, unless CI is set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { grant, policies } from './helpers.mjs';

const { Engine, Ledger, Denied, guard } = grant;
const server = process.env.GRANT_TEST_PG_URL;
if (!server && process.env.CI) {
  throw new Error('GRANT_TEST_PG_URL is not set: CI must run the PostgreSQL store tests');
}

const psql = (sql) =>
  execFileSync('psql', [server, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: 'inherit' });

test('a guarded task on PostgreSQL reads as one lifecycle', { skip: !server && 'GRANT_TEST_PG_URL is not set' }, async (t) => {
  const schema = `grant_node_${randomBytes(6).toString('hex')}`;
  psql(`CREATE SCHEMA ${schema}`);
  t.after(() => psql(`DROP SCHEMA ${schema} CASCADE`));
  const url = `${server}${server.includes('?') ? '&' : '?'}options=-csearch_path%3D${schema}`;

  const engine = Engine.load(path.join(policies, 'guard.grant'));
  const ledger = await Ledger.open(url, engine, { actor: 'tests' });
  const task = await ledger.openTask({ agent: 'bot' });
  const calls = [];
  const echo = guard(ledger, { task, agent: 'bot', tool: 'echo', attrs: { env: 'test' } }, async ({ n }) => {
    calls.push(n);
    return n;
  });
  assert.equal(await echo({ n: 1 }), 1);
  const first = echo.lastAdmission.grantId;
  assert.equal(await echo({ n: 2 }), 2);
  assert.equal(echo.lastAdmission.grantId, first);
  await assert.rejects(echo({ n: 11 }), Denied);
  assert.deepEqual(calls, [1, 2]);

  // 8 promises race for one `uses 1` grant: one use goes through.
  const once = await ledger.requestGrant({ taskId: task.taskId, agent: 'bot', tool: 'once' });
  const outcomes = await Promise.allSettled(
    Array.from({ length: 8 }, () => ledger.useGrant({ grantId: once.grantId, agent: 'bot', tool: 'once' })),
  );
  assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
  assert.ok(outcomes.filter((o) => o.status === 'rejected').every((o) => o.reason instanceof Denied));

  await ledger.endTask(task.taskId);
  const kinds = (await ledger.timeline(task.taskId)).map((event) => event.type);
  assert.equal(kinds[0], 'task.opened');
  assert.equal(kinds.at(-1), 'task.ended');
  assert.equal(kinds.filter((k) => k === 'grant.used').length, 3);
  assert.equal(kinds.filter((k) => k === 'grant.use_refused').length, 8);
  assert.equal((await ledger.verify()).intact, true);
  await ledger.close();
});
