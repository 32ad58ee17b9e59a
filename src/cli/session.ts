import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from './command.ts';

/**
 * The CLI's stored login. `ward auth signup` and `ward auth login` write it; every other command reads it
 * unless WARD_API_TOKEN is set. It holds a bearer token, so the directory is 0700 and the file 0600, and
 * the file is replaced atomically (temp file + rename) so a crash mid-write never leaves half a token or
 * a file with looser permissions.
 */
export interface StoredSession {
  /** api_url is the server the token belongs to; it is never sent anywhere else. */
  api_url: string;
  token: string;
  email: string;
  expires_at: string;
}

/** SessionStore reads and writes session.json in the config directory. */
export interface SessionStore {
  readonly path: string;
  /** read returns the stored session, or undefined when there is none. A damaged file counts as none. */
  read(): Promise<StoredSession | undefined>;
  write(session: StoredSession): Promise<void>;
  /** clear removes the stored session; it returns false when there was none. */
  clear(): Promise<boolean>;
}

/** configDirFrom returns WARD_CONFIG_DIR, or ~/.config/ward. */
export function configDirFrom(env: Env): string {
  const dir = env.WARD_CONFIG_DIR;
  if (dir) return dir;
  return join(env.HOME || homedir(), '.config', 'ward');
}

/** fileSessionStore keeps the session in `<dir>/session.json`. */
export function fileSessionStore(dir: string): SessionStore {
  const path = join(dir, 'session.json');
  return {
    path,
    async read() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        return undefined;
      }
      return isStoredSession(v) ? v : undefined;
    },
    async write(session) {
      // mkdir's mode applies only to directories it creates; tighten the one we made, never a
      // pre-existing WARD_CONFIG_DIR the user chose (it could be shared, like /tmp).
      const created = await mkdir(dir, { recursive: true, mode: 0o700 });
      if (created !== undefined) await chmod(dir, 0o700);
      const tmp = join(dir, `.session.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
      // 'wx' refuses to follow a planted file or symlink at the temp path; 0o600 is set at creation, so
      // the token is never readable by others, not even for a moment.
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(session, null, 2) + '\n');
        await fh.sync();
      } catch (e) {
        await fh.close();
        await unlink(tmp).catch(() => {});
        throw e;
      }
      await fh.close();
      try {
        await rename(tmp, path);
      } catch (e) {
        await unlink(tmp).catch(() => {});
        throw e;
      }
    },
    async clear() {
      try {
        await unlink(path);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw e;
      }
    },
  };
}

function isStoredSession(v: unknown): v is StoredSession {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.api_url === 'string' && typeof o.token === 'string' && o.token !== '' && typeof o.email === 'string' && typeof o.expires_at === 'string';
}
