import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RCODE_FORMERR,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  TYPE_A,
  TYPE_AAAA,
  TYPE_TXT,
  buildQuery,
  parseQuery,
  parseResponse,
} from './codec.ts';
import { InternalResolver, parseResolvConf } from './server.ts';

const A = { orgId: 'org_a', prefix6: 'fd11:1111:1111::/48', subnet4: '10.89.1.0/24' };
const B = { orgId: 'org_b', prefix6: 'fd22:2222:2222::/48', subnet4: '10.89.2.0/24' };

function resolver(): InternalResolver {
  const r = new InternalResolver({ upstreams: [], timeoutMs: 100 });
  r.addOrg(A);
  r.addOrg(B);
  r.setRecords([
    { orgId: 'org_a', app: 'web', instanceId: 'ins_1', region: 'ams', ipv6: 'fd11:1111:1111:1::10' },
    { orgId: 'org_a', app: 'web', instanceId: 'ins_2', region: 'fra', ipv6: 'fd11:1111:1111:2::20' },
    { orgId: 'org_a', app: 'db', instanceId: 'ins_3', region: 'ams', ipv6: 'fd11:1111:1111:1::30' },
    { orgId: 'org_b', app: 'secret-db', instanceId: 'ins_4', region: 'ams', ipv6: 'fd22:2222:2222:1::40' },
  ]);
  return r;
}

async function ask(r: InternalResolver, name: string, type: number, source: string) {
  const reply = await r.answer(buildQuery(7, name, type), source, 'udp');
  assert.ok(reply);
  return parseResponse(reply);
}

test('queries round-trip through the codec', () => {
  const q = parseQuery(buildQuery(0x1234, 'Web.Internal', TYPE_AAAA, { edns: true }));
  assert.equal(q.id, 0x1234);
  assert.deepEqual(q.questions, [{ name: 'web.internal', type: TYPE_AAAA, class: 1 }]);
  assert.equal(q.recursionDesired, true);
  assert.equal(q.edns, true);
  assert.equal(q.udpSize, 1232);
});

test('.internal answers only the asking org, decided by the source address', async () => {
  const r = resolver();
  const web = await ask(r, 'web.internal', TYPE_AAAA, 'fd11:1111:1111:1::99');
  assert.equal(web.rcode, RCODE_NOERROR);
  assert.ok(web.authoritative);
  assert.deepEqual(web.answers.map((a) => a.data), ['fd11:1111:1111:1::10', 'fd11:1111:1111:2::20']);
  assert.deepEqual((await ask(r, 'ams.web.internal', TYPE_AAAA, '10.89.1.7')).answers.map((a) => a.data), ['fd11:1111:1111:1::10'], 'IPv4 sources count too');
  assert.deepEqual((await ask(r, 'ins_2.vm.web.internal', TYPE_AAAA, 'fd11:1111:1111:8001::5')).answers.map((a) => a.data), ['fd11:1111:1111:2::20'], 'people slice');
  assert.deepEqual((await ask(r, '_apps.internal', TYPE_TXT, 'fd11:1111:1111:1::99')).answers.map((a) => a.data), [['db,web']]);
  // Another org's app does not exist for org_a: NXDOMAIN, exactly as for a name nobody holds.
  const other = await ask(r, 'secret-db.internal', TYPE_AAAA, 'fd11:1111:1111:1::99');
  assert.deepEqual([other.rcode, other.answers], [RCODE_NXDOMAIN, []]);
  assert.equal((await ask(r, 'nothing.internal', TYPE_AAAA, 'fd11:1111:1111:1::99')).rcode, RCODE_NXDOMAIN);
  assert.deepEqual((await ask(r, '_apps.internal', TYPE_TXT, 'fd22:2222:2222:1::1')).answers.map((a) => a.data), [['secret-db']]);
  assert.equal((await ask(r, 'ins_4.vm.secret-db.internal', TYPE_AAAA, 'fd11:1111:1111:1::99')).rcode, RCODE_NXDOMAIN);
  // A name that exists, asked for a type it has none of: NOERROR, no answers (NODATA).
  assert.deepEqual(await ask(r, 'web.internal', TYPE_A, 'fd11:1111:1111:1::99').then((x) => [x.rcode, x.answers.length]), [RCODE_NOERROR, 0]);
  // Sources outside every org are refused, for .internal and for forwarding alike.
  assert.equal((await ask(r, 'web.internal', TYPE_AAAA, 'fd33::1')).rcode, RCODE_REFUSED);
  assert.equal((await ask(r, 'example.com', TYPE_AAAA, '192.0.2.1')).rcode, RCODE_REFUSED);
  // No upstream answers: SERVFAIL, not a hang.
  assert.equal((await ask(r, 'example.com', TYPE_AAAA, 'fd11:1111:1111:1::99')).rcode, RCODE_SERVFAIL);
});

test('large answers are truncated for UDP and complete over TCP', async () => {
  const r = resolver();
  r.setRecords(Array.from({ length: 40 }, (_, i) => ({ orgId: 'org_a', app: 'big', instanceId: `ins_${i}`, region: 'ams', ipv6: `fd11:1111:1111:1::${(i + 16).toString(16)}` })));
  const udp = parseResponse((await r.answer(buildQuery(1, 'big.internal', TYPE_AAAA), 'fd11:1111:1111:1::99', 'udp'))!);
  assert.ok(udp.truncated);
  assert.ok(udp.answers.length < 40);
  const tcp = parseResponse((await r.answer(buildQuery(1, 'big.internal', TYPE_AAAA), 'fd11:1111:1111:1::99', 'tcp'))!);
  assert.equal(tcp.answers.length, 40);
  assert.ok(!tcp.truncated);
});

test('malformed messages get FORMERR or nothing, never a crash', async () => {
  const r = resolver();
  const src = 'fd11:1111:1111:1::99';
  assert.equal(await r.answer(Buffer.alloc(5), src, 'udp'), undefined);
  const loop = buildQuery(1, 'a.internal', TYPE_AAAA);
  loop[12] = 0xc0; // a pointer to itself
  loop[13] = 12;
  assert.equal(parseResponse((await r.answer(loop, src, 'udp'))!).rcode, RCODE_FORMERR);
  const long = Buffer.concat([buildQuery(1, 'a.internal', TYPE_AAAA).subarray(0, 12), Buffer.from([63]), Buffer.alloc(10)]);
  assert.equal(parseResponse((await r.answer(long, src, 'udp'))!).rcode, RCODE_FORMERR);
  const response = buildQuery(1, 'web.internal', TYPE_AAAA);
  response[2]! |= 0x80;
  assert.equal(await r.answer(response, src, 'udp'), undefined, 'responses are never answered (no reflection loops)');
  for (let i = 0; i < 200; i++) {
    const junk = Buffer.from(Array.from({ length: 12 + (i % 40) }, (_, k) => (k * 31 + i * 17) & 0xff));
    await r.answer(junk, src, 'udp');
  }
});

test('resolv.conf upstreams', () => {
  assert.deepEqual(parseResolvConf('# x\nnameserver 10.0.0.2\nnameserver fd00::1\nnameserver bogus\nsearch x\n'), [
    { address: '10.0.0.2', port: 53 },
    { address: 'fd00::1', port: 53 },
  ]);
});
