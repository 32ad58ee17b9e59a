import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { UserError } from '../core/index.ts';

/**
 * resolveApp picks the app a command works on: the explicit name (a positional or `-a/--app`) when
 * given, else the `app` key of ./ward.toml. Only that key is read here; the full ward.toml validation
 * lives in src/config and runs where the whole file matters (deploy).
 */
export async function resolveApp(explicit: string | undefined, cwd: string): Promise<string> {
  if (explicit !== undefined && explicit !== '') return explicit;
  const path = join(cwd, 'ward.toml');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError('usage', 'no app given, and there is no ward.toml here', { hint: 'pass -a APP, or run this in the directory of your ward.toml' });
    }
    throw new UserError('invalid_config', `cannot read ${path}: ${(e as Error).message}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new UserError('invalid_config', `ward.toml is not valid TOML: ${(e as Error).message.split('\n')[0]}`, { hint: 'fix the file, or pass -a APP' });
  }
  const app = doc.app;
  if (typeof app !== 'string' || app === '') {
    throw new UserError('invalid_config', 'ward.toml has no app name', { hint: 'add app = "NAME" at its top, or pass -a APP' });
  }
  return app;
}
