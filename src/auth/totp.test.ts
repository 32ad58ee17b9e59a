import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base32Decode, base32Encode, checkTotp, hotp, newTotpSecret, otpauthUri, totpCode } from './totp.ts';

test('HOTP matches RFC 4226 Appendix D', () => {
  const secret = Buffer.from('12345678901234567890');
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
  expected.forEach((code, i) => assert.equal(hotp(secret, i), code));
});

test('TOTP matches RFC 6238 Appendix B (SHA-1, 8 digits)', () => {
  const secret = Buffer.from('12345678901234567890');
  const cases: Array<[number, string]> = [[59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'], [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130']];
  for (const [t, code] of cases) assert.equal(hotp(secret, Math.floor(t / 30), 8), code, String(t));
});

test('base32 round-trips and the window accepts one step of drift, no more', () => {
  const s = newTotpSecret();
  assert.match(s, /^[A-Z2-7]{32}$/);
  assert.deepEqual(base32Decode(base32Encode(Buffer.from('hello world'))), Buffer.from('hello world'));
  const now = 1_800_000_000_000;
  const code = totpCode(s, now);
  assert.equal(checkTotp(s, code, now), Math.floor(now / 30000));
  assert.ok(checkTotp(s, code, now + 30_000) !== undefined, 'one step late is fine');
  assert.equal(checkTotp(s, code, now + 61_000), undefined, 'two steps late is not');
  for (const bad of ['', '12345', '1234567', 'abcdef', ' 123456']) assert.equal(checkTotp(s, bad, now), undefined, bad);
  assert.match(otpauthUri(s, 'ann@example.com'), /^otpauth:\/\/totp\/Ward%3Aann%40example\.com\?secret=[A-Z2-7]+&issuer=Ward&algorithm=SHA1&digits=6&period=30$/);
});
