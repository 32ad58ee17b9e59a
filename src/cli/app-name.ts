import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/index.ts';

/**
 * resolveApp picks the app a command works on: the explicit name (a positional or `-a/--app`) when
 * given, else the `app` key of ./ward.toml. A ward.toml that is read is validated in full first, locally,
 * and any error stops the command before it contacts the server (shared/CLI.md).
 */
export async function resolveApp(explicit: string | undefined, cwd: string): Promise<string> {
  if (explicit !== undefined && explicit !== '') return explicit;
  const path = join(cwd, 'ward.toml');
  try {
    await access(path);
  } catch {
    throw new UserError('usage', 'no app given, and there is no ward.toml here', { hint: 'pass -a APP, or run this in the directory of your ward.toml' });
  }
  // Loaded here: the app config's schema (zod) is only needed when a ward.toml is read.
  const { assertValidAppConfig, loadAppConfig } = await import('../config/app-config.ts');
  const config = assertValidAppConfig(await loadAppConfig(path), 'ward.toml');
  if (!config.app) {
    throw new UserError('invalid_config', 'ward.toml has no app name', { hint: 'add app = "NAME" at its top, or pass -a APP' });
  }
  return config.app;
}
