/**
 * Local images for `ward deploy --image`: an `oci-archive:PATH`, `docker-archive:PATH` or `oci:DIR`
 * reference on the user's machine becomes an archive the CLI uploads (`POST /v1/apps/{app}/images`),
 * streamed from disk, never read into memory. An OCI layout directory is packed into an oci-archive on
 * the fly. The server never opens a path a client names.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { UserError } from '../core/index.ts';
// tar.ts alone: the images index would load the image store and registry client into every command.
import { writeTar } from '../agent/runtime/images/tar.ts';

export interface LocalImage {
  /** format is what the server reads the upload as. */
  format: 'oci-archive' | 'docker-archive';
  /** selector picks an image inside the archive (an OCI ref name, or name:tag / @N for docker-archive). */
  selector: string | undefined;
  /** size is the exact number of bytes body() yields. */
  size: number;
  body(): AsyncIterable<Uint8Array>;
  /** label is how to name it for people: the reference as given. */
  label: string;
}

const TRANSPORTS = ['oci-archive', 'docker-archive', 'oci'] as const;

/** splitLocalRef reads `transport:PATH[:SELECTOR]` as skopeo does (the path ends at its first colon). */
export function splitLocalRef(ref: string): { transport: (typeof TRANSPORTS)[number]; path: string; selector: string | undefined } | undefined {
  const transport = TRANSPORTS.find((t) => ref.startsWith(`${t}:`));
  if (!transport) return undefined;
  const rest = ref.slice(transport.length + 1);
  const colon = rest.indexOf(':');
  const path = colon === -1 ? rest : rest.slice(0, colon);
  const selector = colon === -1 ? undefined : rest.slice(colon + 1);
  if (path === '') throw new UserError('usage', `${ref}: ${transport}: needs a path`, { hint: `like ${transport}:./app.tar` });
  if (selector === '') throw new UserError('usage', `${ref}: the image name after the path is empty`);
  return { transport, path, selector };
}

const BLOCK = 512;
const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

interface DirEntry {
  name: string;
  file: string | undefined;
  size: number;
}

/** listLayout lists an OCI layout directory's files and directories; links and other kinds are refused. */
async function listLayout(dir: string): Promise<DirEntry[]> {
  const out: DirEntry[] = [];
  const walk = async (d: string) => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const s = await lstat(p);
      const rel = relative(dir, p);
      if (Buffer.byteLength(rel) > 99) throw new UserError('usage', `${p}: the name is too long for an OCI layout`);
      if (s.isDirectory()) {
        out.push({ name: `${rel}/`, file: undefined, size: 0 });
        await walk(p);
      } else if (s.isFile()) out.push({ name: rel, file: p, size: s.size });
      else throw new UserError('usage', `${p} is not a regular file or directory; an OCI layout holds only those`);
    }
  };
  await walk(dir);
  return out;
}

/** header is one ustar header (writeTar's, without its end-of-archive blocks). */
function header(e: DirEntry): Buffer {
  return writeTar([e.file ? { path: e.name, type: 'file', size: e.size, mode: 0o644 } : { path: e.name, type: 'directory' }]).subarray(0, BLOCK);
}

/** localImage turns a local reference into an upload, or returns undefined for a registry reference. */
export async function localImage(ref: string, cwd: string): Promise<LocalImage | undefined> {
  const parsed = splitLocalRef(ref.trim());
  if (!parsed) return undefined;
  const path = resolve(cwd, parsed.path);
  const s = await lstat(path).catch(() => undefined);
  if (!s) throw new UserError('image_not_found', `${path} does not exist`, { hint: `check the path in --image ${ref}` });
  if (parsed.transport !== 'oci') {
    if (!s.isFile()) throw new UserError('usage', `${path} is not a file; ${parsed.transport}: names an archive`, { hint: 'for an OCI layout directory use oci:DIR' });
    return { format: parsed.transport, selector: parsed.selector, size: s.size, body: () => createReadStream(path), label: ref };
  }
  if (!s.isDirectory()) throw new UserError('usage', `${path} is not a directory; oci: names an OCI layout directory`, { hint: 'for an archive use oci-archive:PATH' });
  const entries = await listLayout(path);
  if (!entries.some((e) => e.name === 'index.json') || !entries.some((e) => e.name === 'oci-layout')) {
    throw new UserError('image_invalid', `${path} is not an OCI image layout (no index.json or oci-layout)`, { hint: 'write one with skopeo copy … oci:DIR or umoci' });
  }
  const size = entries.reduce((n, e) => n + BLOCK + e.size + pad(e.size), 0) + 2 * BLOCK;
  return {
    format: 'oci-archive',
    selector: parsed.selector,
    size,
    label: ref,
    async *body() {
      for (const e of entries) {
        yield header(e);
        if (!e.file) continue;
        let sent = 0;
        for await (const chunk of createReadStream(e.file)) {
          sent += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (sent !== e.size) throw new UserError('usage', `${e.file} changed while it was being uploaded`, { hint: 'deploy again' });
        yield Buffer.alloc(pad(e.size));
      }
      yield Buffer.alloc(2 * BLOCK);
    },
  };
}
