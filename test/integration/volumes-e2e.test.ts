// Volumes through a real single-node Ward (startServer: control plane and agent, crun instances): the
// CLI creates a volume, a deploy with [[mounts]] puts it into the instance, the app's writes survive a
// restart and a redeploy, `ward volumes show` says which encryption it uses, destroy is refused while an
// instance mounts it; a deploy without the mount lets go of it (the host then holds ciphertext only),
// and destroy removes the key and the file. Needs root and crun, as CI has.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../src/cli/testing.ts';
import { mountPoints } from '../../src/agent/volumes/mounts.ts';
import { run } from '../../src/exec/index.ts';
import { cannotRunContainers } from './runtime-harness.ts';
import { settled, shellImage, startNode, waitFor, type WardNode } from './agent-fixture.ts';

const skip = cannotRunContainers() || (!existsSync('/usr/bin/python3') && '/usr/bin/python3 is missing: run scripts/bootstrap');

describe('ward volumes with a real single-node Ward (crun)', { skip, timeout: 300_000 }, () => {
  let node: WardNode;
  let dir = '';
  let image = '';
  const CANARY = `wardvolumee2e${randomBytes(12).toString('hex')}`;
  const env = () => ({ WARD_API_URL: node.server.apiUrl, WARD_API_TOKEN: node.token, WARD_CONFIG_DIR: join(dir, 'cfg') });
  const ward = (argv: string[]) => runCli(argv, { env: env(), cwd: dir });
  const deploy = async (mounts: boolean) => {
    const r = await node.api('POST', '/v1/apps/vault/deploy', {
      image,
      config: { app: 'vault', deploy: { strategy: 'immediate' }, ...(mounts ? { mounts: [{ source: 'data', destination: '/data' }] } : {}) },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const done = await settled(node, 'vault', r.body.release.version);
    assert.equal(done.release.status, 'succeeded', JSON.stringify(done.release));
    return done;
  };

  before(async () => {
    node = await startNode();
    dir = await mkdtemp(join(tmpdir(), 'ward-volumes-e2e-'));
    assert.equal((await node.api('POST', '/v1/apps', { name: 'vault' })).status, 201);
    // The app appends a line to its volume each time it starts (when the volume is there), then waits.
    const up = await node.upload('vault', await shellImage(`if [ -d /data ]; then echo ${CANARY} >> /data/starts; fi; exec sleep 3600`), 'oci-archive');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    image = up.body.image.digest;
  });
  after(async () => {
    const dataDir = node?.dataDir;
    const failed = await node?.cleanup().then(() => undefined, (e: unknown) => e);
    // Stopping the instances closes their volumes; should that have failed, no mount (and so no loop
    // device) under the data dir may outlive the test.
    if (dataDir) {
      const left = mountPoints(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.startsWith(`${dataDir}/`)).reverse();
      for (const m of left) await run(['umount', '--lazy', m], { allowFailure: true });
      await rm(dataDir, { recursive: true, force: true });
      assert.deepEqual(left, [], 'every volume was closed when the server stopped its instances');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
    if (failed) throw failed;
  });

  test('create, mount, survive restart and redeploy, show, refuse destroy in use, then crypto-erase', async () => {
    const c = await ward(['volumes', 'create', 'data', '--size', '64mb', '-a', 'vault']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr + c.stdout, /Created volume data \(64MB\)/);
    const bad = await ward(['volumes', 'create', 'other', '--size', '0', '-a', 'vault']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /between 64MB and 16TB/);
    const pending = await ward(['volumes', 'show', 'data', '-a', 'vault']);
    assert.match(pending.stdout, /not formatted yet .*fscrypt/);

    const v1 = await deploy(true);
    const volume = JSON.parse((await ward(['volumes', 'show', 'data', '-a', 'vault', '--json'])).stdout);
    assert.equal(volume.encryption, 'fscrypt');
    assert.deepEqual(volume.attached, [v1.instances[0].id]);
    const shown = await ward(['volumes', 'show', 'data', '-a', 'vault']);
    assert.match(shown.stdout, /fscrypt: ext4 with kernel fscrypt \(v2 policy: AES-256-XTS contents/);
    const agent = node.server.agent!;
    const starts = async () => (await readFile(join(agent.volumes.mountedPath(volume.id)!, 'starts'), 'utf8')).trim().split('\n');
    await waitFor('the first start to write', async () => (await starts()).length === 1);

    // Restart: the instance starts again and finds what it wrote.
    assert.equal((await node.api('POST', '/v1/apps/vault/restart', {})).status, 200);
    await waitFor('the restarted instance to write', async () => (await starts()).length === 2);
    // Redeploy: a new release's instance gets the same volume.
    await deploy(true);
    await waitFor('the redeployed instance to write', async () => (await starts()).length === 3);
    assert.deepEqual(await starts(), [CANARY, CANARY, CANARY]);

    const refused = await ward(['volumes', 'destroy', 'data', '-a', 'vault', '--yes']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /is in use by ins_/);

    // A release without the mount: the last user lets go, the key leaves the kernel, the host keeps ciphertext.
    await deploy(false);
    await waitFor('the volume to be closed', async () => agent.volumes.mountedPath(volume.id) === undefined);
    const volDir = join(node.dataDir, 'volumes', volume.id);
    assert.deepEqual(await readdir(join(volDir, 'mnt')), []);
    assert.equal((await readFile(join(volDir, 'volume.img'))).indexOf(CANARY), -1, 'the canary is not in the loop file');

    const d = await ward(['volumes', 'destroy', 'data', '-a', 'vault', '--yes', '--json']);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual([JSON.parse(d.stdout).key_destroyed, JSON.parse(d.stdout).file_removed], [true, true]);
    assert.equal(existsSync(volDir), false, 'the loop file is gone');
    const list = JSON.parse((await ward(['volumes', 'list', '-a', 'vault', '--json'])).stdout);
    assert.deepEqual(list, []);
    const audit = await node.api('GET', '/v1/audit?org=acme&limit=1000');
    const actions = audit.body.entries.map((e: any) => e.action);
    for (const a of ['volume.create', 'volume.key_deliver', 'volume.destroy']) assert.ok(actions.includes(a), `${a} is audited`);
  });
});
