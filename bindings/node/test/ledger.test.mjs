// The promise-based ledger: its operations, its errors, its concurrency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { grant, policies, tempDir } from './helpers.mjs';

const { Engine, Ledger, LedgerError, Denied } = grant;
const engine = Engine.load(path.join(policies, 'guard.grant'));

test('tasks, grants, uses, renewal, revocation, timeline and verification', async (t) => {
  const ledger = await Ledger.open(`sqlite:${path.join(tempDir(t), 'ledger.db')}`, engine, { actor: 'tests' });
  const task = await ledger.openTask({ agent: 'bot', labels: { incident: 'INC-1' } });
  assert.match(task.taskId, /^task_/);
  assert.equal(task.state, 'open');
  assert.deepEqual(task.labels, { incident: 'INC-1' });

  const issued = await ledger.requestGrant({ taskId: task.taskId, agent: 'bot', tool: 'echo', attrs: { env: 'test', 'args.n': 0 }, ttl: '30s' });
  assert.equal(issued.state, 'active');
  assert.equal(issued.ttlSeconds, 30);
  assert.equal(issued.decision.allowed, true);
  assert.equal(issued.decision.decisionId, issued.decisionId);

  const used = await ledger.useGrant({ grantId: issued.grantId, agent: 'bot', tool: 'echo', attrs: { env: 'test', 'args.n': 1 } });
  assert.equal(used.ok, true);
  assert.equal(used.usesLeft, null);
  assert.equal(used.decision.allowed, true);

  // A use the policy denies: Denied, with the decision.
  await assert.rejects(
    ledger.useGrant({ grantId: issued.grantId, agent: 'bot', tool: 'echo', attrs: { env: 'test', 'args.n': 11 } }),
    (error) => {
      assert.ok(error instanceof Denied);
      assert.equal(error.decision.rules[0].id, 'too-big');
      assert.equal(typeof error.decisionId, 'string');
      return true;
    },
  );
  // A request the policy denies.
  await assert.rejects(ledger.requestGrant({ taskId: task.taskId, agent: 'bot', tool: 'nothing' }), (error) => {
    assert.ok(error instanceof Denied);
    assert.equal(error.decision.allowed, false);
    assert.match(error.message, /^denied: no rule allows tool `nothing`/);
    return true;
  });

  const renewed = await ledger.renew({ grantId: issued.grantId, agent: 'bot', attrs: { env: 'test', args: { n: 0 } }, ttl: 20 });
  assert.equal(renewed.renewals, 1);

  const bound = await ledger.bindCredential({ grantId: issued.grantId, issuer: 'sts', credentialRef: 'fp:abc' });
  assert.deepEqual(bound.credentials.map((c) => c.credentialRef), ['fp:abc']);

  const view = await ledger.task(task.taskId);
  assert.equal(view.grants.length, 1);
  assert.deepEqual(view.subtasks, []);

  const revoked = await ledger.revoke({ grant: issued.grantId, reason: 'done' });
  assert.deepEqual(revoked.revoked, [issued.grantId]);
  assert.equal((await ledger.grant(issued.grantId)).state, 'revoked');

  const ended = await ledger.endTask(task.taskId);
  assert.deepEqual(ended.ended, [task.taskId]);

  const events = await ledger.timeline(task.taskId);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'task.opened');
  assert.ok(types.includes('grant.issued'));
  assert.ok(types.includes('grant.used'));
  assert.ok(types.includes('grant.use_refused') || types.includes('grant.denied'));
  assert.equal(types.at(-1), 'task.ended');
  assert.ok(events.every((e, i) => i === 0 || e.seq > events[i - 1].seq));
  assert.equal(events.find((e) => e.type === 'grant.issued').decision.effect, 'allow');

  const verification = await ledger.verify();
  assert.equal(verification.intact, true);
  assert.ok(verification.events >= events.length);
  await ledger.close();
});

test('approvals: pending until approved; rejects', async () => {
  const ledger = await Ledger.open('memory', engine);
  const { taskId } = await ledger.openTask({ agent: 'bot' });
  const pending = await ledger.requestGrant({ taskId, agent: 'bot', tool: 'deploy' });
  assert.equal(pending.state, 'pending');
  assert.deepEqual(pending.approvals.required, ['ops']);
  const approved = await ledger.approve({ grantId: pending.grantId, approver: 'alice', group: 'ops' });
  assert.equal(approved.state, 'active');
  const other = await ledger.requestGrant({ taskId, agent: 'bot', tool: 'deploy' });
  const rejected = await ledger.reject({ grantId: other.grantId, approver: 'alice', group: 'ops', reason: 'no' });
  assert.notEqual(rejected.state, 'pending');
  await ledger.close();
});

test('ledger errors are LedgerError with a kind', async () => {
  const ledger = await Ledger.open('memory', engine);
  await assert.rejects(ledger.grant('grant_nope'), (error) => {
    assert.ok(error instanceof LedgerError);
    assert.equal(error.kind, 'not_found');
    return true;
  });
  await assert.rejects(ledger.requestGrant({ taskId: 'task_nope', agent: 'bot', tool: 'echo' }), LedgerError);
  const { taskId } = await ledger.openTask({ agent: 'bot' });
  await assert.rejects(ledger.openTask({ agent: 'bot', taskId }), (error) => error.kind === 'conflict');
  await assert.rejects(Ledger.open('nowhere:x', engine), (error) => error instanceof LedgerError && error.kind === 'unavailable');
  await assert.rejects(ledger.openTask({ agent: 1 }), TypeError);
  await ledger.close();
});

test('a closed ledger rejects every operation with kind closed', async () => {
  const ledger = await Ledger.open('memory', engine);
  const { taskId } = await ledger.openTask({ agent: 'bot' });
  await ledger.close();
  assert.equal(ledger.closed, true);
  for (const op of [
    () => ledger.openTask({ agent: 'bot' }),
    () => ledger.requestGrant({ taskId, agent: 'bot', tool: 'echo' }),
    () => ledger.timeline(taskId),
    () => ledger.verify(),
  ]) {
    await assert.rejects(op(), (error) => {
      assert.ok(error instanceof LedgerError);
      assert.equal(error.kind, 'closed');
      assert.match(error.message, /the ledger is closed/);
      return true;
    });
  }
  assert.throws(() => grant.guard(ledger, { task: taskId, agent: 'bot', tool: 'echo' }, async () => 1), (error) => error.kind === 'closed');
});

test('a guarded function is not called when its call cannot be recorded', async () => {
  const ledger = await Ledger.open('memory', engine);
  const task = await ledger.openTask({ agent: 'bot' });
  const calls = [];
  const echo = grant.guard(ledger, { task, agent: 'bot', tool: 'echo', attrs: { env: 'test' } }, async () => calls.push(1));
  await echo({ n: 1 });
  await ledger.close();
  // Closed: the call can be neither decided nor recorded, so it fails closed.
  await assert.rejects(echo({ n: 1 }), (error) => error instanceof LedgerError && error.kind === 'closed');
  assert.deepEqual(calls, [1]);
});

test('64 concurrent decisions and uses on one engine and one ledger; a uses-1 grant used once', async (t) => {
  const ledger = await Ledger.open(`sqlite:${path.join(tempDir(t), 'concurrent.db')}`, engine);
  const { taskId } = await ledger.openTask({ agent: 'bot' });
  const echo = await ledger.requestGrant({ taskId, agent: 'bot', tool: 'echo', attrs: { env: 'test', 'args.n': 0 } });
  const work = [];
  for (let i = 0; i < 64; i++) {
    work.push((async () => {
      const decision = engine.decide({ tool: 'echo', attrs: { env: 'test', args: { n: i % 20 } } });
      assert.equal(decision.allowed, i % 20 <= 10);
      const used = ledger.useGrant({ grantId: echo.grantId, agent: 'bot', tool: 'echo', attrs: { env: 'test', 'args.n': i % 20 } });
      if (decision.allowed) assert.equal((await used).ok, true);
      else await assert.rejects(used, Denied);
    })());
  }
  await Promise.all(work);

  const once = await ledger.requestGrant({ taskId, agent: 'bot', tool: 'once' });
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, () => ledger.useGrant({ grantId: once.grantId, agent: 'bot', tool: 'once' })),
  );
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results.filter((r) => r.status === 'rejected')) assert.ok(r.reason instanceof Denied, String(r.reason));
  assert.equal((await ledger.grant(once.grantId)).state, 'exhausted');

  const verification = await ledger.verify();
  assert.equal(verification.intact, true, JSON.stringify(verification.problem));
  await ledger.close();
});
