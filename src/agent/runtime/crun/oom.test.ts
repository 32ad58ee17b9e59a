import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oomKilledIn, parseKmsgRecord } from './oom.ts';

const OOM = 'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=ins_a,mems_allowed=0,oom_memcg=/ward/ins_a,task_memcg=/ward/ins_a,task=node,pid=23746,uid=101000';

test('parseKmsgRecord reads timestamp and message', () => {
  assert.deepEqual(parseKmsgRecord(`6,1234,1323669102,-;${OOM}\n SUBSYSTEM=x`), { usec: 1323669102, message: OOM });
  assert.deepEqual(parseKmsgRecord('4,9,5,-,caller=T1;hello'), { usec: 5, message: 'hello' });
  assert.equal(parseKmsgRecord('garbage'), undefined);
});

test('oomKilledIn matches the exact cgroup, after the start only', () => {
  const records = [{ usec: 2_000_000, message: OOM }, { usec: 2_000_001, message: 'Memory cgroup out of memory: Killed process 23746 (node)' }];
  assert.equal(oomKilledIn(records, '/ward/ins_a', 1_000_000), true);
  assert.equal(oomKilledIn(records, '/ward/ins_a', 3_000_000), false, 'an OOM kill of an earlier run does not count');
  assert.equal(oomKilledIn(records, '/ward/ins', 0), false, 'a prefix of another cgroup is not a match');
  assert.equal(oomKilledIn(records, '/ward/ins_ab', 0), false);
  assert.equal(oomKilledIn([], '/ward/ins_a', 0), false);
});
