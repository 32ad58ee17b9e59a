import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configDirFrom, fileSessionStore, type StoredSession } from './session.ts';
import { tempDir } from './testing.ts';

const s1: StoredSession = { api_url: 'http://127.0.0.1:4280', token: 'ward_ses_one', email: 'a@example.com', expires_at: '2999-01-01T00:00:00.000Z' };
const s2: StoredSession = { ...s1, token: 'ward_ses_two' };

describe('session file', () => {
  it('is written 0600 in a 0700 directory it creates, even with a permissive umask', async () => {
    const t = await tempDir();
    const old = process.umask(0);
    try {
      const dir = join(t.dir, 'nested', 'ward');
      const store = fileSessionStore(dir);
      await store.write(s1);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.equal((await stat(store.path)).mode & 0o777, 0o600);
      assert.deepEqual(await store.read(), s1);
    } finally {
      process.umask(old);
      await t.remove();
    }
  });

  it('replaces the file atomically, leaving no temp files and keeping 0600', async () => {
    const t = await tempDir();
    try {
      const store = fileSessionStore(t.dir);
      await store.write(s1);
      await store.write(s2);
      assert.deepEqual(await readdir(t.dir), ['session.json']);
      assert.equal((await stat(store.path)).mode & 0o777, 0o600);
      assert.deepEqual(JSON.parse(await readFile(store.path, 'utf8')), s2);
    } finally {
      await t.remove();
    }
  });

  it('leaves the permissions of a directory it did not create alone', async () => {
    const t = await tempDir();
    try {
      const dir = join(t.dir, 'shared');
      await mkdir(dir, { mode: 0o755 });
      await fileSessionStore(dir).write(s1);
      assert.equal((await stat(dir)).mode & 0o777, 0o755);
    } finally {
      await t.remove();
    }
  });

  it('reads a missing or damaged file as no session, and clears idempotently', async () => {
    const t = await tempDir();
    try {
      const store = fileSessionStore(t.dir);
      assert.equal(await store.read(), undefined);
      assert.equal(await store.clear(), false);
      for (const text of ['{', '[]', '{"token":""}', JSON.stringify({ ...s1, token: 5 })]) {
        await writeFile(store.path, text);
        assert.equal(await store.read(), undefined, text);
      }
      await store.write(s1);
      assert.equal(await store.clear(), true);
      assert.equal(await store.read(), undefined);
    } finally {
      await t.remove();
    }
  });

  it('lives in WARD_CONFIG_DIR, else ~/.config/ward', () => {
    assert.equal(configDirFrom({ WARD_CONFIG_DIR: '/x/y', HOME: '/home/a' }), '/x/y');
    assert.equal(configDirFrom({ HOME: '/home/a' }), '/home/a/.config/ward');
  });
});
