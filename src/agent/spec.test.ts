import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../core/index.ts';
import { commandOf, DEFAULT_PATH, instanceEnv, parseImageEnv, platformEnv, resolveUser, workingDir } from './spec.ts';

const image = (over: Record<string, unknown> = {}) => ({ Env: [], ExposedPorts: [], Labels: {}, ...over });

describe('what an instance runs', () => {
  test('command: Entrypoint then Cmd; none is image_invalid', () => {
    assert.deepEqual(commandOf(image({ Entrypoint: ['/bin/busybox', 'httpd'], Cmd: ['-f', '-p', '8080'] })), ['/bin/busybox', 'httpd', '-f', '-p', '8080']);
    assert.deepEqual(commandOf(image({ Cmd: ['/bin/true'] })), ['/bin/true']);
    assert.throws(() => commandOf(image()), (e: unknown) => e instanceof UserError && e.code === 'image_invalid');
  });

  test('environment layers image < [env] < secrets < WARD_*, with a default PATH', () => {
    assert.deepEqual(parseImageEnv(['A=1', 'B=x=y', 'NOEQ', '=bad']), { A: '1', B: 'x=y' });
    const platform = platformEnv({ appName: 'web', instanceId: 'ins_x', releaseVersion: 3, region: 'local', hostName: 'h1', privateIpv6: 'fd00::1', privateIpv4: undefined });
    const env = instanceEnv(image({ Env: ['A=image', 'B=image', 'WARD_APP_NAME=spoof'] }), { env: { B: 'toml', C: 'toml', WARD_REGION: 'spoof' } }, { C: 'secret' }, platform);
    assert.deepEqual(env, {
      A: 'image', B: 'toml', C: 'secret', WARD_APP_NAME: 'web', WARD_INSTANCE_ID: 'ins_x', WARD_RELEASE_VERSION: '3', WARD_REGION: 'local', WARD_HOST: 'h1', WARD_PRIVATE_IP: 'fd00::1', PATH: DEFAULT_PATH,
    });
    assert.equal(instanceEnv(image({ Env: ['PATH=/bin'] }), { env: {} }, {}, {}).PATH, '/bin');
  });

  test('working dir from the image', () => {
    assert.equal(workingDir(image({ WorkingDir: '/www' })), '/www');
    assert.equal(workingDir(image({ WorkingDir: 'relative' })), '/');
    assert.equal(workingDir(image()), '/');
  });
});

describe('resolveUser', () => {
  let root = '';
  let linked = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-user-'));
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n');
    await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nstaff:x:50:\n');
    // An evil image whose /etc/passwd points at the host's: never read through.
    linked = await mkdtemp(join(tmpdir(), 'ward-user-evil-'));
    await mkdir(join(linked, 'etc'));
    await symlink('/etc/passwd', join(linked, 'etc', 'passwd'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(linked, { recursive: true, force: true });
  });

  test('names and numbers, with groups', async () => {
    assert.deepEqual(await resolveUser(undefined, root), { uid: 0, gid: 0 });
    assert.deepEqual(await resolveUser('', root), { uid: 0, gid: 0 });
    assert.deepEqual(await resolveUser('app', root), { uid: 1000, gid: 1001 });
    assert.deepEqual(await resolveUser('1000', root), { uid: 1000, gid: 1001 });
    assert.deepEqual(await resolveUser('2000', root), { uid: 2000, gid: 0 });
    assert.deepEqual(await resolveUser('app:staff', root), { uid: 1000, gid: 50 });
    assert.deepEqual(await resolveUser('5:6', root), { uid: 5, gid: 6 });
  });

  test('unknown names, ids beyond the mapping and symlinked files are refused', async () => {
    const invalid = (e: unknown) => e instanceof UserError && e.code === 'image_invalid';
    await assert.rejects(resolveUser('nobody', root), invalid);
    await assert.rejects(resolveUser('app:wheel', root), invalid);
    await assert.rejects(resolveUser('70000', root), invalid);
    await assert.rejects(resolveUser('root', linked), invalid, 'root exists in the host passwd, which must not be read');
  });
});
