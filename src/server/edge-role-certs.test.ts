// The edge role's certificates in the Store and the server `domain`: every app with [http_service] is
// routed at `<app>.<domain>` (and that name is managed like the others), no other app can take that
// name (by its hostnames or by `ward certs add`), and certificates an earlier Ward kept in files under
// the data dir are imported into the Store on first start. No ACME here: the issuer always fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../store/index.ts';
import { ephemeralSealingKeys } from '../secrets/index.ts';
import { HealthRegistry } from '../agent/health/index.ts';
import { appConfig, placeRelease, seedStore, waitFor } from '../agent/testing.ts';
import { aesGcmSealer, FileCertStore, selfSignedCertificate, storedFromPem } from '../edge/index.ts';
import type { EdgeRole } from './edge-role.ts';
import { roleGet, startTestEdgeRole } from './edge-role-testing.ts';

const IMAGE = { digest: `sha256:${'a'.repeat(64)}` } as never;

describe('edge role: certificates in the store, and the server domain', () => {
  let dir = '';
  let store: Store;
  let backend: Server;
  let backendPort = 0;
  let role: EdgeRole;
  const health = new HealthRegistry();
  let imported = '';

  const get = (host: string) => roleGet(role, host);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-edge-role-certs-'));
    const data = join(dir, 'data');
    store = await openStore({ dataDir: data });
    backend = createServer((req, res) => res.end(`backend ${req.headers.host}`));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    backendPort = (backend.address() as { port: number }).port;
    const sealing = ephemeralSealingKeys();
    // What an earlier Ward left in files: one uploaded certificate, sealed under the same key.
    const kc = await selfSignedCertificate({ names: ['old.ward.test'] });
    imported = kc.certPem;
    const files = new FileCertStore(join(data, 'edge', 'certs'), aesGcmSealer(await sealing.deriveKey('edge-certs')));
    const old = storedFromPem(kc.certPem, kc.keyPem, 'manual');
    await files.putCertificate(old);
    await files.putStatus({ name: old.name, state: 'valid', notAfter: old.notAfter.toISOString(), renewAt: undefined, lastAttemptAt: undefined, lastError: undefined, failures: 0, nextAttemptAt: undefined });
    role = await startTestEdgeRole(data, store, { health, refreshMs: 100, sealing, flags: { domain: 'Apps.Ward.Test' } });
  });

  after(async () => {
    await role?.close();
    await new Promise((r) => backend?.close(r));
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('certificates kept in files by an earlier Ward are in the store, and the files are set aside', async () => {
    const s = await role.certificates.show('old.ward.test');
    assert.equal(s?.state, 'valid');
    assert.equal((await store.edgeCerts.getCertificate('old.ward.test'))?.certPem, imported);
    assert.match((await store.edgeCerts.getCertificate('old.ward.test'))!.keySealed, /^v1\./);
    await assert.rejects(stat(join(dir, 'data', 'edge', 'certs')), /ENOENT/);
    assert.ok((await stat(join(dir, 'data', 'edge', 'certs.imported'))).isDirectory());
  });

  test('every app with [http_service] answers at <app>.<domain>, whose certificate is managed', async () => {
    const seed = await seedStore(store);
    const cfg = appConfig({ app: seed.appName, http_service: { internal_port: backendPort, hostnames: [], force_https: false } });
    const { instances } = await placeRelease(store, seed, 1, IMAGE, cfg);
    const name = `${seed.appName}.apps.ward.test`;
    await waitFor('the default route', async () => (await get(name)).status === 503);
    health.set({ appId: seed.appId, instanceId: instances[0]!.id, releaseId: 'r', addresses: ['127.0.0.1'], address: '127.0.0.1', port: backendPort, health: 'passing' });
    await waitFor('the healthy instance', async () => (await get(name)).status === 200);
    assert.equal((await get(name.toUpperCase())).body, `backend ${name.toUpperCase()}`);
    const listed = await waitFor('the managed name', async () => {
      const l = await role.certificates.list(seed.appName);
      return l.some((c) => c.name === name) ? l : undefined;
    });
    assert.deepEqual(listed.map((c) => c.name), [name]);

    // Another app can take that name neither by listing it nor with `ward certs add`.
    const other = await seedStore(store);
    await placeRelease(store, other, 1, IMAGE, appConfig({ app: other.appName, http_service: { internal_port: backendPort + 1, hostnames: [name, `x.${other.appName}.test`], force_https: false } }));
    await role.certificates.add(other.appName, name);
    await role.refresh();
    await waitFor('the other app routed', async () => (await get(`x.${other.appName}.test`)).status === 503);
    assert.equal((await get(name)).status, 200, `${name} stays with its app`);
    assert.equal((await get(`${other.appName}.apps.ward.test`)).status, 503, "the other app's own default name is its own");
    assert.equal((await role.certificates.show(name))?.app, seed.appName, 'ward certs shows the name as its app\'s (the API refuses it to others: name_taken)');

    // An app without [http_service] has no default name.
    const quiet = await seedStore(store);
    await placeRelease(store, quiet, 1, IMAGE, appConfig({ app: quiet.appName }));
    await role.refresh();
    assert.equal((await get(`${quiet.appName}.apps.ward.test`)).status, 404);
  });
});
