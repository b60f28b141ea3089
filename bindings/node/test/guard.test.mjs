// guard(): grant_ledger::Guard around an async tool function.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { grant, policies, sleep } from './helpers.mjs';

const { Engine, Ledger, Denied, ApprovalPending, guard } = grant;
const engine = Engine.load(path.join(policies, 'guard.grant'));

async function setup() {
  const ledger = await Ledger.open('memory', engine);
  const task = await ledger.openTask({ agent: 'bot' });
  return { ledger, task };
}

test('calls reuse one grant; a deny rejects without calling fn and leaves the grant', async () => {
  const { ledger, task } = await setup();
  const calls = [];
  const echo = guard(ledger, { task, agent: 'bot', tool: 'echo', attrs: { env: 'test' } }, async (args) => {
    calls.push(args.n);
    return args.n * 2;
  });
  assert.equal(await echo({ n: 1 }), 2);
  const first = echo.lastAdmission;
  assert.equal(first.issued, true);
  assert.equal(await echo({ n: 2 }), 4);
  assert.equal(echo.lastAdmission.grantId, first.grantId);
  assert.equal(echo.lastAdmission.issued, false);

  await assert.rejects(echo({ n: 11 }), (error) => {
    assert.ok(error instanceof Denied);
    assert.equal(error.decision.rules[0].id, 'too-big');
    return true;
  });
  assert.deepEqual(calls, [1, 2]);
  assert.equal(await echo({ n: 3 }), 6);
  assert.equal(echo.lastAdmission.grantId, first.grantId);
  await ledger.close();
});

test('an expired grant gives way to a new request', async () => {
  const { ledger, task } = await setup();
  const short = guard(ledger, { task: task.taskId, agent: 'bot', tool: 'short' }, async () => 'ok');
  await short({});
  const first = short.lastAdmission.grantId;
  await short({});
  assert.equal(short.lastAdmission.grantId, first);
  await sleep(1100);
  await short({});
  assert.notEqual(short.lastAdmission.grantId, first);
  assert.equal(short.lastAdmission.issued, true);
  await ledger.close();
});

test('a used-up grant gives way to a new request', async () => {
  const { ledger, task } = await setup();
  const once = guard(ledger, { task, agent: 'bot', tool: 'once' }, async () => 'ok');
  await once();
  const first = once.lastAdmission.grantId;
  assert.equal(once.lastAdmission.usesLeft, 0);
  await once();
  assert.notEqual(once.lastAdmission.grantId, first);
  await ledger.close();
});

test('a pending approval rejects with ApprovalPending until approved', async () => {
  const { ledger, task } = await setup();
  let calls = 0;
  const deploy = guard(ledger, { task, agent: 'bot', tool: 'deploy' }, async () => ++calls);
  let pending;
  await assert.rejects(deploy({}), (error) => {
    assert.ok(error instanceof ApprovalPending);
    assert.ok(error instanceof Denied);
    assert.deepEqual(error.approvals, ['ops']);
    assert.match(error.expiresAt, /Z$/);
    pending = error.grantId;
    return true;
  });
  // Asking again points at the same pending grant.
  await assert.rejects(deploy({}), (error) => error.grantId === pending);
  assert.equal(calls, 0);
  await ledger.approve({ grantId: pending, approver: 'alice', group: 'ops' });
  assert.equal(await deploy({}), 1);
  assert.equal(deploy.lastAdmission.grantId, pending);
  await ledger.close();
});

test('guard() checks its call shape', async () => {
  const { ledger, task } = await setup();
  assert.throws(() => guard({}, { task, agent: 'a', tool: 't' }, async () => 1), TypeError);
  assert.throws(() => guard(ledger, { task, agent: 'a', tool: 't' }, 'fn'), TypeError);
  assert.throws(() => guard(ledger, { task: 1, agent: 'a', tool: 't' }, async () => 1), TypeError);
  await ledger.close();
});
