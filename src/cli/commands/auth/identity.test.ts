// The identity commands against a fake API: prompting for a one-time code at a terminal, the 429 wording,
// and input mistakes caught before any request. The real server is exercised in
// test/e2e/identity-cli.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { CliIo, InputStream } from '../../command.ts';
import { main } from '../../index.ts';
import { fakeApi, runCli, tempDir, type FakeApi, type FakeReply, type RecordedRequest } from '../../testing.ts';

/** AnsweringTty is a terminal whose user types the next queued line whenever a hidden prompt starts. */
class AnsweringTty extends EventEmitter {
  isTTY = true;
  readonly lines: string[];
  constructor(lines: string[]) {
    super();
    this.lines = lines;
  }
  setRawMode(mode: boolean) {
    if (mode) {
      const line = this.lines.shift();
      if (line !== undefined) setImmediate(() => this.emit('data', `${line}\r`));
    }
    return this;
  }
  setEncoding() {}
  resume() {}
  pause() {}
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    throw new Error('a terminal is not read to its end');
  }
}

const session = { token: 'ward_ses_x', kind: 'cli', expires_at: '2999-01-01T00:00:00.000Z', idle_timeout: '12h' };
const user = { id: 'usr_1', email: 'ana@example.com', created_at: '2026-01-01T00:00:00.000Z' };

describe('identity commands', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let api: FakeApi;
  let handler: (req: RecordedRequest) => FakeReply = () => ({ status: 500 });

  before(async () => {
    tmp = await tempDir();
    api = await fakeApi((req) => handler(req));
  });
  after(async () => {
    await api.close();
    await tmp.remove();
  });

  async function onTty(argv: string[], lines: string[], env: Record<string, string>) {
    let stdout = '';
    let stderr = '';
    const tty = new AnsweringTty(lines);
    const io: CliIo = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, stdin: tty as unknown as InputStream };
    const code = await main(argv, io, { env });
    return { code, stdout, stderr, tty };
  }

  test('login asks for the one-time code at a terminal when the server needs one', async () => {
    api.requests.length = 0;
    handler = (req) => {
      const body = req.body as { otp?: string };
      if (!body.otp) return { status: 401, body: { error: { code: 'otp_required', message: 'a one-time code is needed', hint: 'pass --otp CODE' } } };
      return body.otp === '123456' ? { status: 200, body: { user, session } } : { status: 401, body: { error: { code: 'invalid_otp', message: 'wrong code' } } };
    };
    const env = { WARD_API_URL: api.url, WARD_CONFIG_DIR: tmp.dir, WARD_PASSWORD: 'pw' };
    const r = await onTty(['auth', 'login', '--email', 'ana@example.com'], ['123456'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /One-time code \(or a recovery code\): /);
    assert.ok(!r.stderr.includes('123456'), 'the code is not echoed');
    assert.deepEqual(api.requests.map((q) => (q.body as { otp?: string }).otp), [undefined, '123456']);
  });

  test('without a terminal, login does not wait for a code', async () => {
    api.requests.length = 0;
    const r = await runCli(['auth', 'login', '--email', 'ana@example.com'], { env: { WARD_API_URL: api.url, WARD_CONFIG_DIR: tmp.dir, WARD_PASSWORD: 'pw' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: a one-time code is needed\nHint: pass --otp CODE\n$/);
    assert.equal(api.requests.length, 1);
  });

  test('a 429 says how long to wait', async () => {
    handler = () => ({ status: 429, headers: { 'retry-after': '7' }, body: { error: { code: 'too_many_requests', message: 'slow down', details: { retry_after_s: 7 } } } });
    const r = await runCli(['auth', 'login', '--email', 'ana@example.com', '--otp', '1'], { env: { WARD_API_URL: api.url, WARD_CONFIG_DIR: tmp.dir, WARD_PASSWORD: 'pw' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: too many failed logins; try again in 7 s\n/);
  });

  test('mistakes are caught before any request', async () => {
    api.requests.length = 0;
    const env = { WARD_API_URL: api.url, WARD_API_TOKEN: 'ward_tok_x' };
    const cases: Array<[string[], RegExp]> = [
      [['auth', 'mfa', 'sideways'], /unknown action "sideways"/],
      [['auth', 'mfa', 'confirm'], /confirm needs the CODE/],
      [['auth', 'mfa', 'enable', '123456'], /enable takes no code/],
      [['orgs', 'members', 'add', 'bo@example.com', '--org', 'acme'], /add needs --role/],
      [['orgs', 'members', 'remove', '--org', 'acme'], /remove needs the member's EMAIL/],
      [['orgs', 'members', 'list', '--org', 'acme', '--role', 'owner'], /--role is for add/],
      [['orgs', 'members', 'add', 'bo@example.com', '--role', 'boss', '--org', 'acme'], /boss/],
      [['orgs', 'policy', 'set', '--org', 'acme'], /set needs --require-mfa or --session-idle/],
      [['orgs', 'policy', 'set', '--org', 'acme', '--require-mfa', 'yes'], /yes/],
      [['orgs', 'policy', 'set', '--org', 'acme', '--session-idle', 'soon'], /invalid --session-idle/],
      [['tokens', 'create', '--name', 'x', '--scope', 'root'], /root/],
      [['tokens', 'create', '--name', 'x', '--scope', 'read', '--expires', 'forever'], /invalid --expires/],
    ];
    for (const [argv, error] of cases) {
      const r = await runCli(argv, { env });
      assert.equal(r.code, 1, argv.join(' '));
      assert.match(r.stderr, error, argv.join(' '));
    }
    assert.equal(api.requests.length, 0);
  });

  test('tokens create prints the secret alone on stdout; policy set sends only what was given', async () => {
    api.requests.length = 0;
    handler = (req) => {
      if (req.url === '/v1/tokens') {
        return { status: 201, body: { secret: 'ward_tok_' + 'A'.repeat(43), token: { id: 'tok_1', name: 'ci', scope: 'read', org: { id: 'org_1', name: 'acme' }, app: null, created_at: 'x', expires_at: 'y', last_used_at: null, revoked_at: null } } };
      }
      return { status: 200, body: { org: { id: 'org_1', name: 'acme', created_at: 'x' }, policy: { require_mfa: false, session_idle: '15m', updated_at: 'x' } } };
    };
    const env = { WARD_API_URL: api.url, WARD_API_TOKEN: 'ward_tok_x' };
    const t = await runCli(['tokens', 'create', '--name', 'ci', '--scope', 'read', '--org', 'acme'], { env });
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, `ward_tok_${'A'.repeat(43)}\n`);
    assert.deepEqual(api.requests[0]!.body, { name: 'ci', scope: 'read', org: 'acme' });
    const p = await runCli(['orgs', 'policy', 'set', '--org', 'acme', '--session-idle', 'default'], { env });
    assert.equal(p.code, 0, p.stderr);
    assert.equal(api.requests[1]!.method, 'PUT');
    assert.equal(api.requests[1]!.url, '/v1/orgs/acme/policy');
    assert.deepEqual(api.requests[1]!.body, { session_idle: null });
  });
});

test('the otpauth URI renders as a terminal QR code', async () => {
  const { terminalQr } = await import('./mfa.ts');
  const qr = await terminalQr('otpauth://totp/Ward%3Aann%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Ward');
  const lines = qr.trimEnd().split('\n');
  assert.ok(lines.length >= 15, `a QR code of ${lines.length} lines`);
  assert.match(qr, /[▀▄█]/);
});
