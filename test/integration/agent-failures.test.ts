// The agent when things go wrong, as root, with real crun containers: a crash-looping release fails
// with its exit code and last log lines while the old release keeps serving untouched; restart policy
// "never" leaves a killed instance stopped; failing checks show as failing health; bad input (unknown
// image, oversized or truncated upload, server paths, resources beyond the host) gets a clear error
// and leaves no release, instance, container, namespace or upload behind.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cannotRunContainers } from './runtime-harness.ts';
import { ensureImageFixtures, type ImageFixtures } from '../fixtures/images.ts';
import { appPid, archiveOf, serves, settled, shellImage, startNode, waitFor, type WardNode } from './agent-fixture.ts';

const skip = cannotRunContainers();
const MAX_UPLOAD = 16 * 1024 * 1024;

describe('agent: failures and bad input (crun)', { skip }, () => {
  let node: WardNode;
  let images: ImageFixtures;
  let good = '';
  before(async () => {
    images = await ensureImageFixtures();
    node = await startNode({ maxUploadBytes: MAX_UPLOAD });
  });
  after(async () => {
    await node?.cleanup();
  });

  const pidOf = async (id: string) => (await node.server.store.instances.get(id))!.pid!;
  async function newApp(name: string): Promise<void> {
    assert.equal((await node.api('POST', '/v1/apps', { name })).status, 201);
    const up = await node.upload(name, await archiveOf(images.app.ociArchive), 'oci-archive');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    good = up.body.image.digest;
  }
  const toml = (app: string, over: Record<string, unknown> = {}) => ({ app, http_service: { internal_port: 8080 }, resources: { memory: '64MB', cpus: 0.5 }, ...over });

  /** nothingLeft: no release, no instance beyond `instances`, no container, no attachment, no upload. */
  async function nothingLeft(app: string, releases: number, instances: string[]) {
    const a = (await node.server.store.apps.findByName(app))!;
    assert.equal((await node.server.store.releases.listForApp(a.id)).length, releases, 'no release was made');
    assert.deepEqual((await node.server.store.instances.listForApp(a.id)).map((i) => i.id).sort(), [...instances].sort(), 'no instance was made');
    const containers = (await node.h.runtime.recover()).filter((i) => i.labels['ward.app'] === a.id).map((i) => i.id);
    assert.deepEqual(containers.filter((id) => !instances.includes(id)), [], 'no container was made');
    // Every attachment on the host belongs to an instance the store knows (of this app or another).
    const known = new Set<string>();
    for (const other of await node.server.store.hosts.list()) for (const i of await node.server.store.instances.listForHost(other.id)) known.add(i.id);
    const attached = (await node.h.network.attachments()).map((x) => x.instanceId);
    assert.deepEqual(attached.filter((id) => !known.has(id)), [], 'no network attachment was made');
    assert.deepEqual(await readdir(join(node.dataDir, 'uploads', 'incoming')).catch(() => []), [], 'no upload is kept');
  }

  test('a crash-looping release fails with its exit code and last log lines; the old release serves on, untouched', async () => {
    const app = 'looper';
    await newApp(app);
    assert.equal((await node.api('POST', `/v1/apps/${app}/deploy`, { image: good, config: toml(app) })).status, 201);
    const v1 = await settled(node, app, 1);
    assert.equal(v1.release.status, 'succeeded', v1.release.reason);
    const old = v1.instances[0];
    const oldPid = await pidOf(old.id);

    const crash = await node.upload(app, await shellImage('echo "starting up"; echo "fatal: no database" >&2; exit 3'), 'oci-archive');
    assert.equal(crash.status, 201, JSON.stringify(crash.body));
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image: crash.body.image.digest, config: toml(app, { restart: { policy: 'always' } }) });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const v2 = await settled(node, app, 2);
    assert.equal(v2.release.status, 'failed');
    assert.match(v2.release.reason, /instance ins_\w+ failed: crash loop: exit code 3, 3 times in a row/);
    const failed = v2.instances[0];
    assert.equal(failed.last_exit.code, 3);
    assert.ok(failed.last_log.includes('starting up'), failed.last_log.join('\n'));
    assert.ok(failed.last_log.includes('[stderr] fatal: no database'), failed.last_log.join('\n'));
    // The old release: same process, still serving; the failed instance is cleaned up.
    assert.equal(await pidOf(old.id), oldPid);
    assert.deepEqual(await serves(old), ['200 ok', '200 ok']);
    await waitFor('the failed instance stopped', async () => (await node.server.store.instances.get(failed.id))?.observedState === 'stopped');
    assert.equal(await node.h.runtime.inspect(failed.id), undefined);
    const st = await node.api('GET', `/v1/apps/${app}/status`);
    assert.equal(st.body.release.version, 1);
    assert.deepEqual(st.body.instances.map((i: any) => [i.id, i.state]), [[old.id, 'running']]);
  });

  test('restart policy never: a killed instance stays stopped', async () => {
    const app = 'oneshot';
    await newApp(app);
    assert.equal((await node.api('POST', `/v1/apps/${app}/deploy`, { image: good, config: toml(app, { restart: { policy: 'never' } }) })).status, 201);
    const v1 = await settled(node, app, 1);
    assert.equal(v1.release.status, 'succeeded', v1.release.reason);
    const ins = v1.instances[0];
    process.kill(await appPid(await pidOf(ins.id)), 'SIGKILL');
    const stopped = await waitFor('stopped', async () => {
      const i = await node.server.store.instances.get(ins.id);
      return i?.observedState === 'stopped' ? i : undefined;
    });
    assert.equal(stopped.lastExitCode, 137);
    await new Promise((r) => setTimeout(r, 1500));
    const still = (await node.server.store.instances.get(ins.id))!;
    assert.equal(still.observedState, 'stopped');
    assert.equal(still.restarts, 0);
    assert.equal(still.desiredState, 'running', 'it was not told to stop: its policy stopped it');
  });

  test('failing checks: health goes failing and the release fails after wait_timeout, naming it', async () => {
    const app = 'sickly';
    await newApp(app);
    const config = toml(app, { http_service: { internal_port: 8080, checks: [{ path: '/missing', interval: '1s', grace_period: '1s' }] }, deploy: { wait_timeout: '6s' } });
    assert.equal((await node.api('POST', `/v1/apps/${app}/deploy`, { image: good, config })).status, 201);
    const a = (await node.server.store.apps.findByName(app))!;
    await waitFor('health failing', async () => (await node.server.store.instances.listForApp(a.id))[0]?.health === 'failing');
    const v1 = await settled(node, app, 1);
    assert.equal(v1.release.status, 'failed');
    assert.match(v1.release.reason, /not every instance was healthy within wait_timeout \(6s\): ins_\w+ running, health failing/);
    const logs = await node.api('GET', `/v1/apps/${app}/logs?instance=${v1.instances[0].id}`);
    assert.ok(logs.body.logs.some((l: any) => l.stream === 'ward' && /^health failing: GET \/missing on :8080: GET \/missing answered 404/.test(l.message)), JSON.stringify(logs.body.logs));
  });

  test('bad input: a clear error and nothing half-made', async () => {
    const app = 'strict';
    assert.equal((await node.api('POST', '/v1/apps', { name: app })).status, 201);

    const unknown = await node.api('POST', `/v1/apps/${app}/deploy`, { image: '127.0.0.1:1/nothing/here:1', config: toml(app) });
    assert.equal(unknown.status, 503, JSON.stringify(unknown.body));
    assert.equal(unknown.body.error.code, 'registry_unavailable');

    const notUploaded = await node.api('POST', `/v1/apps/${app}/deploy`, { image: `sha256:${'e'.repeat(64)}`, config: toml(app) });
    assert.equal(notUploaded.status, 404);
    assert.equal(notUploaded.body.error.code, 'image_not_found');

    const serverPath = await node.api('POST', `/v1/apps/${app}/deploy`, { image: images.app.ociArchive, config: toml(app) });
    assert.equal(serverPath.status, 400);
    assert.equal(serverPath.body.error.code, 'invalid_image_ref');
    assert.match(serverPath.body.error.hint, /uploads the archive/);

    const big = await node.upload(app, Buffer.alloc(MAX_UPLOAD + 1), 'oci-archive');
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'payload_too_large');

    const whole = await archiveOf(images.app.ociArchive);
    const truncated = await node.upload(app, whole.subarray(0, Math.floor(whole.length / 2)), 'oci-archive');
    assert.equal(truncated.status, 400, JSON.stringify(truncated.body));
    assert.equal(truncated.body.error.code, 'image_invalid');

    const ok = await node.upload(app, whole, 'oci-archive');
    assert.equal(ok.status, 201);
    const huge = await node.api('POST', `/v1/apps/${app}/deploy`, { image: ok.body.image.digest, config: toml(app, { resources: { memory: '4096GB', cpus: 1 } }) });
    assert.equal(huge.status, 400);
    assert.equal(huge.body.error.code, 'resources_exceed_host');

    const badToml = await node.api('POST', `/v1/apps/${app}/deploy`, { image: ok.body.image.digest, config: { app, http_service: { internal_port: 'eighty' } } });
    assert.equal(badToml.status, 400);
    assert.equal(badToml.body.error.code, 'invalid_config');
    assert.match(badToml.body.error.message, /http_service.internal_port/);

    const otherApp = await node.api('POST', `/v1/apps/${app}/deploy`, { image: ok.body.image.digest, config: { app: 'someone-else' } });
    assert.equal(otherApp.body.error.code, 'invalid_config');

    const sideways = await node.api('POST', `/v1/apps/${app}/deploy`, { image: ok.body.image.digest, config: toml(app), strategy: 'sideways' });
    assert.equal(sideways.status, 400, JSON.stringify(sideways.body));

    await nothingLeft(app, 0, []);
    // Another app cannot deploy this app's upload by its digest.
    assert.equal((await node.api('POST', '/v1/apps', { name: 'intruder' })).status, 201);
    const stolen = await node.api('POST', '/v1/apps/intruder/deploy', { image: ok.body.image.digest });
    assert.equal(stolen.body.error.code, 'image_not_found');
  });
});
