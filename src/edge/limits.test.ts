import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientLimiter } from './limits.ts';

test('connections per IP are counted and capped', () => {
  const l = new ClientLimiter({ maxConnectionsPerIp: 2, requestsPerSecondPerIp: 0, requestBurstPerIp: 1 });
  assert.equal(l.openConnection('1.1.1.1'), true);
  assert.equal(l.openConnection('1.1.1.1'), true);
  assert.equal(l.openConnection('1.1.1.1'), false);
  assert.equal(l.openConnection('2.2.2.2'), true, 'another client has its own budget');
  l.closeConnection('1.1.1.1');
  assert.equal(l.openConnection('1.1.1.1'), true);
});

test('requests per IP follow a token bucket and say when to retry', () => {
  let now = 0;
  const l = new ClientLimiter({ maxConnectionsPerIp: 10, requestsPerSecondPerIp: 2, requestBurstPerIp: 3 }, () => now);
  assert.deepEqual([l.takeRequest('a'), l.takeRequest('a'), l.takeRequest('a')], [0, 0, 0]);
  assert.equal(l.takeRequest('a'), 1, 'the burst is spent');
  assert.equal(l.takeRequest('b'), 0);
  now += 500; // one token back at 2/s
  assert.equal(l.takeRequest('a'), 0);
  assert.equal(l.takeRequest('a'), 1);
});

test('sweep forgets idle clients only', () => {
  let now = 0;
  const l = new ClientLimiter({ maxConnectionsPerIp: 10, requestsPerSecondPerIp: 10, requestBurstPerIp: 10 }, () => now);
  l.openConnection('held');
  l.takeRequest('spent');
  l.takeRequest('idle');
  now += 10_000;
  l.closeConnection('nobody');
  l.sweep();
  assert.equal(l.size, 1, 'only the client with an open connection is kept');
});
