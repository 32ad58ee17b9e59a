// The CLI of deploys against a real single-node Ward (crun): `ward deploy --image oci:DIR` (packed and
// uploaded by the CLI), progress on stderr and a --json summary; `ward status`, `ward releases`,
// `ward restart`, `ward logs` (and -f until Ctrl-C); a failing deploy exits 1 with the reason and the
// instance's last lines; ward.toml is validated before anything is sent.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../src/cli/testing.ts';
import { cannotRunContainers } from './runtime-harness.ts';
import { ensureImageFixtures, type ImageFixtures } from '../fixtures/images.ts';
import { serves, shellImage, startNode, waitFor, type WardNode } from './agent-fixture.ts';

const skip = cannotRunContainers();

describe('ward deploy, status, releases, restart, logs (crun)', { skip }, () => {
  let node: WardNode;
  let images: ImageFixtures;
  let dir = '';
  const env = () => ({ WARD_API_URL: node.server.apiUrl, WARD_API_TOKEN: node.token, WARD_CONFIG_DIR: join(dir, 'cfg') });
  const ward = (argv: string[], opts: { untilSignal?: () => Promise<NodeJS.Signals> } = {}) => runCli(argv, { env: env(), cwd: dir, ...opts });

  before(async () => {
    images = await ensureImageFixtures();
    node = await startNode();
    dir = await mkdtemp(join(tmpdir(), 'ward-cli-deploy-'));
    assert.equal((await node.api('POST', '/v1/apps', { name: 'portal' })).status, 201);
    await writeFile(join(dir, 'ward.toml'), [
      'app = "portal"',
      '[http_service]',
      'internal_port = 8080',
      '  [[http_service.checks]]',
      '  path = "/healthz"',
      '  interval = "2s"',
      '[resources]',
      'memory = "64MB"',
      'cpus = 0.5',
      '[deploy]',
      'strategy = "immediate"',
      '',
    ].join('\n'));
  });
  after(async () => {
    await node?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('ward deploy --image oci:DIR packs, uploads and deploys it, showing its steps; --json prints a summary', async () => {
    const r = await ward(['deploy', '--image', images.app.oci, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /--> Uploading oci:.+:app \(/);
    assert.match(r.stderr, /--> Image resolved: sha256:[a-f0-9]{64} \(1 layer\)/);
    assert.match(r.stderr, /--> Release v1 created \(immediate\): starting 1 instance/);
    assert.match(r.stderr, /--> Instances started 1\/1/);
    assert.match(r.stderr, /--> Health checks passing 1\/1/);
    assert.match(r.stderr, /--> Release v1 succeeded in \d+\.\ds/);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.release.version, 1);
    assert.deepEqual(await serves(summary.instances[0]), ['200 ok', '200 ok']);
  });

  test('ward status, ward releases (and --json)', async () => {
    const s = await ward(['status']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^App\s+portal \(org acme\)$/m);
    assert.match(s.stdout, /^Release\s+v1 succeeded$/m);
    assert.match(s.stdout, /^ID\s+RELEASE\s+REGION\s+HOST\s+STATE\s+HEALTH\s+RESTARTS\s+PRIVATE IP$/m);
    assert.match(s.stdout, /^ins_\w+\s+v1\s+local\s+\S+\s+running\s+passing\s+0\s+fd\S+ 10\.\S+$/m);
    const j = JSON.parse((await ward(['status', '--json'])).stdout);
    assert.equal(j.instances[0].state, 'running');
    const rel = await ward(['releases']);
    assert.equal(rel.code, 0, rel.stderr);
    assert.match(rel.stdout, /^v1\s+succeeded\s+immediate\s+sha256:/m);
    assert.deepEqual(JSON.parse((await ward(['releases', '--json'])).stdout).map((x: any) => x.version), [1]);
  });

  test('ward restart restarts the instance; ward logs shows it; ward logs -f follows until Ctrl-C', async () => {
    let stop!: (s: NodeJS.Signals) => void;
    const signalled = new Promise<NodeJS.Signals>((r) => (stop = r));
    const following = ward(['logs', '-f', '--since', '5m'], { untilSignal: () => signalled });
    const before = (await node.api('GET', '/v1/apps/portal/status')).body.instances[0];
    const r = await ward(['restart']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Restarting 1 instance of portal/);
    await waitFor('running again', async () => {
      const i = (await node.api('GET', '/v1/apps/portal/status')).body.instances[0];
      return i.state === 'running' && i.health === 'passing' && i.started_at !== before.started_at;
    });
    stop('SIGINT');
    const f = await following;
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, / ins_\w+ \[ward\] restart requested: stopping$/m);
    const logs = await ward(['logs']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^\d{4}-\d\d-\d\dT\S+ ins_\w+ \[ward\] running \(pid \d+/m);
    const json = JSON.parse((await ward(['logs', '--json', '--instance', before.id])).stdout);
    assert.ok(json.every((l: any) => l.instance === before.id));
  });

  test('a deploy that fails exits 1 with the reason and the last log lines; the app keeps serving', async () => {
    const tar = join(dir, 'crash.tar');
    await writeFile(tar, await shellImage('echo "loading config"; echo "panic: missing DATABASE_URL" >&2; exit 2'));
    const r = await ward(['deploy', '--image', `oci-archive:${tar}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--> Release v2 failed after/);
    // stdout and stderr are read separately: the two lines of one run may come in either order.
    const tail = /Last lines of ins_\w+:\n((?: {2}.*\n)+)/.exec(r.stderr)?.[1] ?? '';
    assert.match(tail, /^ {2}loading config$/m, r.stderr);
    assert.match(tail, /^ {2}\[stderr\] panic: missing DATABASE_URL$/m, r.stderr);
    assert.match(r.stderr, /Error: release v2 failed: instance ins_\w+ failed: crash loop: exit code 2/);
    assert.match(r.stderr, /Hint: the previous release keeps serving/);
    const st = (await node.api('GET', '/v1/apps/portal/status')).body;
    assert.equal(st.release.version, 1);
    assert.deepEqual(await serves(st.instances[0]), ['200 ok', '200 ok']);
  });

  test('ward.toml is validated before anything is sent; a missing archive is named', async () => {
    const bad = join(dir, 'bad.toml');
    await writeFile(bad, 'app = "portal"\n[http_service]\ninternal_port = "x"\n');
    const before = (await node.api('GET', '/v1/apps/portal/releases')).body.releases.length;
    const r = await ward(['deploy', '--config', bad, '--image', images.app.ociArchive]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error: \S*bad\.toml has 1 error:\n\S*bad\.toml:3:\d+: error: http_service\.internal_port: expected a port number/);
    const missing = await ward(['deploy', '--image', 'oci-archive:./nope.tar']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Error: .*nope\.tar does not exist/);
    assert.equal((await node.api('GET', '/v1/apps/portal/releases')).body.releases.length, before);
  });
});
