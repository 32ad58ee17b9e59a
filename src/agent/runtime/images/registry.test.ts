import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, test } from 'node:test';
import { UserError } from '../../../core/index.ts';
import { hostPlatform } from './manifest.ts';
import { parseReference, type RegistryReference } from './reference.ts';
import { isLoopbackHost, parseChallenge, RegistryClient, transportPolicy } from './registry.ts';

test('transportPolicy: loopback may be plain HTTP, others need verified HTTPS unless listed insecure', () => {
  assert.deepEqual(transportPolicy('registry.example.com'), { schemes: ['https'], verifyTls: true });
  assert.deepEqual(transportPolicy('10.0.0.5:5000'), { schemes: ['https'], verifyTls: true });
  assert.deepEqual(transportPolicy('127.0.0.1:5000'), { schemes: ['https', 'http'], verifyTls: true });
  assert.deepEqual(transportPolicy('localhost:5000'), { schemes: ['https', 'http'], verifyTls: true });
  assert.deepEqual(transportPolicy('[::1]:5000'), { schemes: ['https', 'http'], verifyTls: true });
  assert.deepEqual(transportPolicy('10.0.0.5:5000', ['10.0.0.5:5000']), { schemes: ['https', 'http'], verifyTls: false });
  assert.deepEqual(transportPolicy('reg.internal:5000', ['reg.internal']), { schemes: ['https', 'http'], verifyTls: false });
  assert.deepEqual(transportPolicy('reg.internal:5000', ['other.internal']), { schemes: ['https'], verifyTls: true });
  for (const h of ['127.0.0.1', '127.5.6.7:80', 'localhost', '[::1]:1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['127.0.0.1.example.com', '128.0.0.1', 'localhost.example.com', '[::2]:1', '0.0.0.0']) assert.equal(isLoopbackHost(h), false, h);
});

test('parseChallenge reads WWW-Authenticate', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' },
  });
  assert.deepEqual(parseChallenge('Basic realm="x \\"y\\""'), { scheme: 'basic', params: { realm: 'x "y"' } });
  assert.deepEqual(parseChallenge('Bearer realm=https://a/t, service=s'), { scheme: 'bearer', params: { realm: 'https://a/t', service: 's' } });
});

// A scripted registry: each test says what it answers.
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});
async function serve(handler: Handler): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(s.address() as { port: number }).port}`;
}

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: hostPlatform().architecture, rootfs: { type: 'layers', diff_ids: [] } }));
const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: [],
}));

function refFor(host: string, rest: string): RegistryReference {
  return parseReference(`${host}/${rest}`) as RegistryReference;
}

function rejectsWith(code: string, re: RegExp) {
  return (e: unknown) => e instanceof UserError && e.code === code && re.test(e.message);
}

test('a manifest whose content does not match the pinned digest is refused', async () => {
  const other = Buffer.from(manifest.toString().replace('"layers":[]', '"layers": []'));
  const host = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(other);
  });
  const client = new RegistryClient();
  await assert.rejects(client.source(refFor(host, `app@${sha(manifest)}`)).resolve(hostPlatform()), rejectsWith('image_invalid', /failed verification/));
  client.close();
});

test('a Docker-Content-Digest header that disagrees with the content is refused', async () => {
  const host = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': `sha256:${'f'.repeat(64)}` }).end(manifest);
  });
  const client = new RegistryClient();
  await assert.rejects(client.source(refFor(host, 'app:1')).resolve(hostPlatform()), rejectsWith('image_invalid', /registry says the manifest is/));
  client.close();
});

test('credentials do not follow a redirect to another host', async () => {
  let seenAuth: string | undefined = 'unset';
  const storage = await serve((req, res) => {
    seenAuth = req.headers.authorization;
    res.end(config);
  });
  const host = await serve((req, res) => {
    if (!req.headers.authorization) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    if (req.url?.includes('/blobs/')) {
      res.writeHead(307, { location: `http://${storage}/signed?x=1` }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
  });
  const client = new RegistryClient({ credentials: { [host]: { username: 'u', password: 'p' } } });
  const src = client.source(refFor(host, 'app:1'));
  const resolved = await src.resolve(hostPlatform());
  const chunks: Buffer[] = [];
  for await (const c of await src.blob(resolved.manifest.config)) chunks.push(c);
  assert.deepEqual(Buffer.concat(chunks), config);
  assert.equal(seenAuth, undefined, 'the storage host got no Authorization header');
  client.close();
});

test('plain HTTP to a non-loopback host is refused before connecting (redirects and token realms too)', async () => {
  const host = await serve((req, res) => {
    if (req.url?.includes('/blobs/')) {
      res.writeHead(302, { location: 'http://storage.example.invalid/blob' }).end();
      return;
    }
    if (req.url?.includes('/manifests/secret')) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth.example.invalid/token",service="s"' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
  });
  const client = new RegistryClient({ credentials: { [host]: { username: 'u', password: 'p' } } });
  const src = client.source(refFor(host, 'app:1'));
  const resolved = await src.resolve(hostPlatform());
  await assert.rejects(src.blob(resolved.manifest.config), rejectsWith('registry_tls', /refusing plain HTTP to storage\.example\.invalid/));
  await assert.rejects(client.source(refFor(host, 'app:secret')).resolve(hostPlatform()), rejectsWith('registry_tls', /token server over plain HTTP/));
  client.close();
});

test('registry errors map to user errors', async () => {
  const host = await serve((req, res) => {
    if (req.url?.includes('missing')) res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    else if (req.url?.includes('denied')) res.writeHead(403).end();
    else res.writeHead(500).end();
  });
  const client = new RegistryClient();
  await assert.rejects(client.source(refFor(host, 'missing:1')).resolve(hostPlatform()), rejectsWith('image_not_found', /MANIFEST_UNKNOWN manifest unknown/));
  await assert.rejects(client.source(refFor(host, 'denied:1')).resolve(hostPlatform()), rejectsWith('registry_auth', /denied/));
  await assert.rejects(client.source(refFor(host, 'broken:1')).resolve(hostPlatform()), rejectsWith('registry_unavailable', /HTTP 500/));
  const closed = await serve(() => {});
  servers.pop()!.close();
  await assert.rejects(client.source(refFor(closed, 'x:1')).resolve(hostPlatform()), rejectsWith('registry_unavailable', /cannot reach/));
  client.close();
});
