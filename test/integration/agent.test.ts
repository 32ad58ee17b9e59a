// The agent end to end, as root, with real crun containers on real network namespaces: images written
// by skopeo (oci-archive, docker-archive) and pulled from a local docker-registry are uploaded or named,
// deployed through the API, and serve on their private addresses; kill -9 is restarted with backoff; a
// restart of the agent (and control plane) re-attaches without restarting; restarts and logs work.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cannotRunContainers } from './runtime-harness.ts';
import { ensureImageFixtures, push, startRegistry, type ImageFixtures, type Registry } from '../fixtures/images.ts';
import { appPid, archiveOf, serves, settled, startNode, waitFor, type WardNode } from './agent-fixture.ts';

const skip = cannotRunContainers();

const WARD_TOML = (app: string) => ({
  app,
  http_service: { internal_port: 8080, checks: [{ path: '/healthz', interval: '2s', grace_period: '10s' }] },
  restart: { policy: 'on-failure' },
  resources: { memory: '64MB', cpus: 0.5 },
});

describe('agent: deploy, supervise, recover (crun)', { skip }, () => {
  let node: WardNode;
  let images: ImageFixtures;
  let registry: Registry | undefined;
  const app = 'web';

  before(async () => {
    images = await ensureImageFixtures();
    node = await startNode();
    assert.equal((await node.api('POST', '/v1/apps', { name: app })).status, 201);
  });
  after(async () => {
    await node?.cleanup();
    await registry?.stop();
  });

  const instancesOf = async (version: number) => (await node.api('GET', `/v1/apps/${app}/releases/${version}`)).body.instances as any[];
  const pidOf = async (id: string) => (await node.server.store.instances.get(id))!.pid!;

  test('an oci-archive written by skopeo is uploaded, deployed and serves on its private addresses', async () => {
    const up = await node.upload(app, await archiveOf(images.app.ociArchive), 'oci-archive');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.match(up.body.image.digest, /^sha256:[a-f0-9]{64}$/);
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image: up.body.image.digest, config: WARD_TOML(app) });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    assert.equal(d.body.release.version, 1);
    assert.equal(d.body.instances.length, 1);
    const done = await settled(node, app, 1);
    assert.equal(done.release.status, 'succeeded', done.release.reason);
    const [ins] = done.instances;
    assert.equal(ins.state, 'running');
    assert.equal(ins.health, 'passing');
    assert.equal(ins.host, `${node.h.prefix}-host`);
    assert.deepEqual(await serves(ins), ['200 ok', '200 ok']);
    const st = await node.api('GET', `/v1/apps/${app}/status`);
    assert.equal(st.body.release.version, 1);
    assert.deepEqual(st.body.instances.map((i: any) => [i.id, i.release, i.state, i.health]), [[ins.id, 1, 'running', 'passing']]);
    // The env the app got (WARD_*) reached it, and nothing of it reached the journal.
    const logs = await node.api('GET', `/v1/apps/${app}/logs`);
    assert.ok(logs.body.logs.some((l: any) => l.stream === 'ward' && /^running \(pid \d+/.test(l.message)), JSON.stringify(logs.body.logs));
  });

  test('a docker-archive replaces it (immediate): the new instance serves, then the old one stops', async () => {
    const [old] = await instancesOf(1);
    const up = await node.upload(app, await archiveOf(images.app.dockerArchive), 'docker-archive');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image: up.body.image.digest, config: WARD_TOML(app) });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const done = await settled(node, app, 2);
    assert.equal(done.release.status, 'succeeded', done.release.reason);
    assert.deepEqual(await serves(done.instances[0]), ['200 ok', '200 ok']);
    await waitFor('the old instance stopped', async () => (await node.server.store.instances.get(old.id))?.observedState === 'stopped');
    assert.equal(await node.h.runtime.inspect(old.id), undefined, 'its container is gone');
    const st = await node.api('GET', `/v1/apps/${app}/status`);
    assert.deepEqual(st.body.instances.map((i: any) => i.release), [2]);
    const rel = await node.api('GET', `/v1/apps/${app}/releases`);
    assert.deepEqual(rel.body.releases.map((r: any) => [r.version, r.status]), [[2, 'succeeded'], [1, 'succeeded']]);
  });

  test('an image pulled by the server from a local docker-registry deploys and serves', async () => {
    registry = await startRegistry();
    const ref = await push(images.app.oci, registry, 'ward/app:1');
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image: ref, config: WARD_TOML(app) });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    assert.equal(d.body.release.image, ref);
    const done = await settled(node, app, 3);
    assert.equal(done.release.status, 'succeeded', done.release.reason);
    assert.deepEqual(await serves(done.instances[0], '/healthz'), ['200 healthy', '200 healthy']);
    // An image the registry does not have: image_not_found, and no release or instance is made.
    const missing = await node.api('POST', `/v1/apps/${app}/deploy`, { image: `${registry.host}/ward/nope:1`, config: WARD_TOML(app) });
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    assert.equal(missing.body.error.code, 'image_not_found');
    assert.deepEqual((await node.api('GET', `/v1/apps/${app}/releases`)).body.releases.map((r: any) => r.version), [3, 2, 1]);
  });

  test('kill -9 of the app process: restarted with backoff, the restarts counter rises, it serves again', async () => {
    const [ins] = await instancesOf(3);
    const init = await pidOf(ins.id);
    process.kill(await appPid(init), 'SIGKILL');
    const back = await waitFor('restarted and healthy', async () => {
      const [i] = await instancesOf(3);
      return i.restarts === 1 && i.state === 'running' && i.health === 'passing' ? i : undefined;
    });
    assert.equal(back.last_exit.code, 137);
    assert.match(back.last_exit.reason, /SIGKILL/);
    assert.notEqual(await pidOf(ins.id), init);
    assert.deepEqual(await serves(back), ['200 ok', '200 ok']);
    assert.equal(back.private_ip, ins.private_ip, 'the same addresses after a restart');
  });

  test('logs follow: an NDJSON stream sees new lines as they are written', async () => {
    const [ins] = await instancesOf(3);
    const ctl = new AbortController();
    const res = await fetch(`${node.server.apiUrl}/v1/apps/${app}/logs?follow=1&since=1m`, { headers: { authorization: `Bearer ${node.token}` }, signal: ctl.signal });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
    const lines: any[] = [];
    const reading = (async () => {
      let buf = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += Buffer.from(chunk).toString();
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            lines.push(JSON.parse(buf.slice(0, nl)));
            buf = buf.slice(nl + 1);
          }
        }
      } catch {
        // Aborted.
      }
    })();
    const r = await node.api('POST', `/v1/apps/${app}/restart`, { instance: ins.id });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor('the restart in the stream', async () => lines.some((l) => l.instance === ins.id && l.stream === 'ward' && l.message === 'restart requested: stopping'));
    await waitFor('running again in the stream', async () => lines.filter((l) => l.instance === ins.id && /^running \(pid/.test(l.message)).length >= 1 && lines.findIndex((l) => l.message === 'restart requested: stopping') < lines.findLastIndex((l) => /^running \(pid/.test(l.message)));
    ctl.abort();
    await reading;
    const after = await waitFor('healthy after the restart', async () => {
      const [i] = await instancesOf(3);
      return i.state === 'running' && i.health === 'passing' ? i : undefined;
    });
    assert.equal(after.restarts, 1, 'a requested restart is not a crash');
  });

  test('an agent (and control plane) restart re-attaches to running instances without restarting them', async () => {
    const [ins] = await instancesOf(3);
    const before = await pidOf(ins.id);
    await node.restartServer();
    // Whatever the new agent does, it must not restart the instance: same pid, and it still serves.
    await waitFor('adopted', async () => node.server.agent?.supervisor(ins.id)?.phase === 'running');
    assert.equal(await pidOf(ins.id), before);
    const [again] = await instancesOf(3);
    assert.equal(again.restarts, 1);
    assert.deepEqual(await serves(again), ['200 ok', '200 ok']);
    await waitFor('healthy in the new agent', async () => node.server.agent!.health.upstreams((await node.server.store.apps.findByName(app))!.id).length === 1);
    // And it is supervised by the new agent: kill -9 is restarted.
    process.kill(await appPid(before), 'SIGKILL');
    await waitFor('restarted by the new agent', async () => {
      const [i] = await instancesOf(3);
      return i.restarts === 2 && i.state === 'running' ? i : undefined;
    });
  });
});
