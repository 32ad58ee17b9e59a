import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/index.ts';
import { auditKeyFromPem, generateAuditKey, type AuditKey } from './chain.ts';

/** AUDIT_KEY_FILE is the signing key's file name inside the server's data directory. */
export const AUDIT_KEY_FILE = 'audit-signing.key';

/** auditKeyPath is where a server with this data directory keeps its audit signing key. */
export function auditKeyPath(dataDir: string): string {
  return join(dataDir, AUDIT_KEY_FILE);
}

/**
 * loadOrCreateAuditKey reads the Ed25519 key that signs audit checkpoints from `file`, or makes one there
 * (PKCS#8 PEM, mode 0600) when there is none. The key is created under a temporary name and linked into
 * place, so two servers starting on one data directory end up with the same key and a crash never leaves
 * a half-written one. A key file that others may read (any group or world bit) is refused rather than
 * used: anyone who can read it can forge checkpoints. Problems are UserError `data_dir`.
 */
export async function loadOrCreateAuditKey(file: string): Promise<{ key: AuditKey; created: boolean }> {
  const existing = await readKey(file);
  if (existing) return { key: existing, created: false };
  const dir = join(file, '..');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw dataDirError(`cannot create the directory ${dir} for the audit signing key: ${(e as Error).message}`, e);
  }
  const key = generateAuditKey();
  const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' });
    try {
      await link(tmp, file);
    } catch (e) {
      // Another process made the key first: use theirs, so one data directory has one key.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const theirs = await readKey(file);
      if (!theirs) throw e;
      return { key: theirs, created: false };
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw dataDirError(`cannot write the audit signing key ${file}: ${(e as Error).message}`, e);
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return { key, created: true };
}

async function readKey(file: string): Promise<AuditKey | undefined> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw dataDirError(`cannot read the audit signing key ${file}: ${(e as Error).message}`, e);
  }
  if ((mode & 0o077) !== 0) {
    throw dataDirError(`the audit signing key ${file} may be read by other users (mode ${(mode & 0o777).toString(8)})`, undefined, `chmod 600 ${file}; if others may have read it, treat it as leaked: see docs/audit.md, "Keys"`);
  }
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (e) {
    throw dataDirError(`cannot read the audit signing key ${file}: ${(e as Error).message}`, e);
  }
  try {
    const key = auditKeyFromPem(pem);
    if (key.privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`it is a ${key.privateKey.asymmetricKeyType} key`);
    return key;
  } catch (e) {
    throw dataDirError(`the audit signing key ${file} is not an Ed25519 private key in PEM form`, e);
  }
}

function dataDirError(message: string, cause: unknown, hint = 'check the data directory (--data-dir) and its permissions'): UserError {
  return new UserError('data_dir', message, { hint, cause });
}
