import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../core/index.ts';
import { FileInput, readTar, StreamInput, writeTar, type TarHeader } from './tar.ts';

async function* chunks(buf: Buffer, size = 333): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(buf: Buffer): Promise<{ header: TarHeader; data: string }[]> {
  const out: { header: TarHeader; data: string }[] = [];
  for await (const e of readTar(new StreamInput(chunks(buf), 'test'), 'test')) {
    const parts: Buffer[] = [];
    if (e.header.path.startsWith('skip')) {
      out.push({ header: e.header, data: '' });
      continue;
    }
    for await (const c of e.body()) parts.push(c);
    out.push({ header: e.header, data: Buffer.concat(parts).toString() });
  }
  return out;
}

function refused(re: RegExp) {
  return (e: unknown) => e instanceof UserError && e.code === 'image_invalid' && re.test(e.message);
}

test('writeTar and readTar round-trip every entry type, long names through pax', async () => {
  const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/file`;
  const tar = writeTar([
    { path: 'dir/', type: 'directory', mode: 0o755, mtime: 1_700_000_000 },
    { path: 'dir/a', type: 'file', data: 'hello', uid: 1000, gid: 1001, mode: 0o640 },
    { path: 'skip-me', type: 'file', data: 'not read by the caller' },
    { path: long, type: 'file', data: 'long' },
    { path: 'link', type: 'symlink', linkpath: `/${'t'.repeat(150)}` },
    { path: 'hard', type: 'hardlink', linkpath: 'dir/a' },
    { path: 'dev', type: 'char', devmajor: 1, devminor: 3 },
    { path: 'fifo', type: 'fifo' },
    { path: 'sparse', type: { typeflag: 'S' } },
  ]);
  const got = await readAll(tar);
  assert.deepEqual(got.map((e) => [e.header.path, e.header.type, e.data]), [
    ['dir/', 'directory', ''], ['dir/a', 'file', 'hello'], ['skip-me', 'file', ''], [long, 'file', 'long'],
    ['link', 'symlink', ''], ['hard', 'hardlink', ''], ['dev', 'char', ''], ['fifo', 'fifo', ''], ['sparse', 'other', ''],
  ]);
  const a = got[1]!.header;
  assert.deepEqual([a.uid, a.gid, a.mode, a.size], [1000, 1001, 0o640, 5]);
  assert.equal(got[0]!.header.mtime, 1_700_000_000);
  assert.equal(got[4]!.header.linkpath, `/${'t'.repeat(150)}`);
  assert.deepEqual([got[6]!.header.devmajor, got[6]!.header.devminor], [1, 3]);
});

test('readTar reads what GNU tar writes: gnu long names, pax, ustar prefixes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ward-tar-'));
  try {
    const src = join(dir, 'src');
    const deep = join(src, 'p'.repeat(80), 'q'.repeat(60));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, 'f'.repeat(60)), 'deep');
    await symlink('x'.repeat(120), join(src, 'longlink'));
    for (const format of ['gnu', 'pax', 'ustar']) {
      const out = join(dir, `${format}.tar`);
      const args = ['--format', format, '-cf', out, '-C', src, '.'];
      if (format === 'ustar') {
        // ustar cannot hold the 120-byte link target; leave the link out.
        args.splice(2, 0, '--exclude=./longlink');
      }
      execFileSync('tar', args);
      const got = await readAll(await readFile(out));
      const file = got.find((e) => e.header.path.endsWith('f'.repeat(60)));
      assert.equal(file?.header.path, `./${'p'.repeat(80)}/${'q'.repeat(60)}/${'f'.repeat(60)}`, format);
      assert.equal(file?.data, 'deep', format);
      if (format !== 'ustar') assert.equal(got.find((e) => e.header.path === './longlink')?.header.linkpath, 'x'.repeat(120), format);
      // The same through positional reads.
      const fh = await open(out, 'r');
      const names: string[] = [];
      for await (const e of readTar(new FileInput(fh, (await fh.stat()).size, format), format)) names.push(e.header.path);
      await fh.close();
      assert.deepEqual(names, got.map((e) => e.header.path));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('readTar refuses bad checksums, bad numbers, truncation and oversized meta headers', async () => {
  const good = writeTar([{ path: 'a', type: 'file', data: 'x'.repeat(1000) }]);
  const badSum = Buffer.from(good);
  badSum[0] = 0x62;
  await assert.rejects(readAll(badSum), refused(/bad tar header checksum/));

  await assert.rejects(readAll(good.subarray(0, 700)), refused(/truncated/));
  await assert.rejects(readAll(good.subarray(0, 300)), refused(/truncated/));

  const badNum = Buffer.from(good);
  badNum.write('9999999\0', 108, 'latin1'); // uid
  // Fix the checksum so only the number is wrong.
  badNum.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += badNum[i]!;
  badNum.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  await assert.rejects(readAll(badNum), refused(/bad uid/));

  const hugePax = writeTar([{ path: 'PaxHeader', type: { typeflag: 'x' }, data: Buffer.alloc(2 * 1024 * 1024, 0x61) }]);
  await assert.rejects(readAll(hugePax), refused(/over the 1048576-byte limit/));

  const sparse = writeTar([{ path: 'PaxHeader', type: { typeflag: 'x' }, data: '22 GNU.sparse.major=1\n' }, { path: 's', type: 'file', data: '' }]);
  assert.equal((await readAll(sparse))[0]!.header.type, 'other', 'pax sparse files are marked for refusal');
});

test('readTar reads base-256 numbers and tolerates a missing final padding (umoci)', async () => {
  const tar = writeTar([{ path: 'a', type: 'file', data: 'abc' }]);
  const h = Buffer.from(tar);
  h.fill(0, 108, 116);
  h[108] = 0x80;
  h[115] = 0x2a; // uid 42, base-256
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const got = await readAll(h);
  assert.equal(got[0]!.header.uid, 42);
  // Cut right after the body: no padding, no end-of-archive blocks.
  const cut = await readAll(tar.subarray(0, 512 + 3));
  assert.equal(cut[0]!.data, 'abc');
});
