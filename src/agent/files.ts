/** Small file helpers the agent's parts share. */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

/** writeAtomic writes a file whole or not at all: a temp file beside it, then rename. */
export async function writeAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  // Unique per writer: an agent and its successor may both write while one shuts down.
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/** readJson reads a JSON file, or returns undefined when it does not exist or does not parse. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
