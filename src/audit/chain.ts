import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical.ts';

/**
 * The audit log is a set of hash chains, one per org (and one, `_server`, for events outside any org),
 * so each org's log can be exported and verified on its own without revealing other orgs' entries.
 *
 * Each entry carries `prev_hash` (the previous entry's hash, or 64 zeros for the first) and `hash` =
 * SHA-256 over `prev_hash` and the canonical JSON of the entry's other fields. Editing, deleting,
 * inserting or reordering any entry breaks every hash after it. Deleting the newest entries leaves a valid
 * but shorter chain, so every so often a checkpoint — (chain, seq, hash, at) — is signed with the
 * server's Ed25519 key: a verifier holding the public key sees that entries up to that seq existed with
 * exactly that head.
 */
export interface AuditRecord {
  chain: string;
  seq: number;
  id: string;
  at: string;
  org_id: string | null;
  actor_type: 'user' | 'token' | 'system' | 'anonymous';
  actor_id: string | null;
  actor_label: string | null;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure' | 'denied';
  source_ip: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface Checkpoint {
  chain: string;
  seq: number;
  hash: string;
  at: string;
  key_id: string;
  /** signature is Ed25519 over canonicalJson({chain, seq, hash, at, key_id}), base64. */
  signature: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** entryHash computes the hash an entry must carry, from everything but the hash itself. */
export function entryHash(e: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _hash, ...rest } = e;
  return createHash('sha256').update(rest.prev_hash).update('\n').update(canonicalJson(rest)).digest('hex');
}

/** sealEntry fills prev_hash and hash for an entry following `prev` (undefined for a chain's first). */
export function sealEntry(e: Omit<AuditRecord, 'hash' | 'prev_hash' | 'seq'>, prev: { seq: number; hash: string } | undefined): AuditRecord {
  const unsealed = { ...e, seq: (prev?.seq ?? 0) + 1, prev_hash: prev?.hash ?? GENESIS_HASH };
  return { ...unsealed, hash: entryHash(unsealed) };
}

export interface AuditKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** generateAuditKey makes a new Ed25519 signing key. */
export function generateAuditKey(): AuditKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

/** keyIdOf names a public key by the first 16 hex digits of the SHA-256 of its DER form. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function auditKeyFromPem(privatePem: string): AuditKey {
  const privateKey = createPrivateKey(privatePem);
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

function checkpointPayload(c: Omit<Checkpoint, 'signature'>): Buffer {
  return Buffer.from(canonicalJson({ chain: c.chain, seq: c.seq, hash: c.hash, at: c.at, key_id: c.key_id }));
}

export function signCheckpoint(key: AuditKey, head: { chain: string; seq: number; hash: string }, at: string): Checkpoint {
  const c = { chain: head.chain, seq: head.seq, hash: head.hash, at, key_id: key.keyId };
  return { ...c, signature: sign(null, checkpointPayload(c), key.privateKey).toString('base64') };
}

export function checkpointValid(c: Checkpoint, publicKey: KeyObject): boolean {
  try {
    return keyIdOf(publicKey) === c.key_id && verify(null, checkpointPayload(c), publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

/** publicKeyFromPem reads a PEM public key (SPKI), as audit_keys and export headers hold them. */
export function publicKeyFromPem(pem: string): KeyObject {
  return createPublicKey(pem);
}

/** publicKeyPem writes a public key as PEM (SPKI). */
export function publicKeyPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

export interface VerifyProblem {
  chain: string;
  /** seq of the first entry (or checkpoint) found bad. */
  seq: number;
  id?: string;
  /** line is the line of an export file the problem is on, when a file was verified. */
  line?: number;
  reason: string;
}

/**
 * ChainRange says what a verified chain covers: entries first_seq..last_seq, of which those up to
 * signed_seq (0 for none) are covered by a valid signed checkpoint. Entries after signed_seq could have
 * been cut off without a trace; the server checkpoints every minute and every 100 entries to keep that
 * window small.
 */
export interface ChainRange {
  chain: string;
  first_seq: number;
  last_seq: number;
  signed_seq: number;
}

export interface VerifyResult {
  ok: boolean;
  chains: number;
  entries: number;
  checkpoints: number;
  problems: VerifyProblem[];
  /** ranges describes each chain, sorted by chain. */
  ranges: ChainRange[];
}

export interface VerifyOptions {
  /**
   * partial accepts chains that start after seq 1 (an export made with `since`): a chain's first entry is
   * taken as given, and checkpoints before it are skipped. Its range says where it starts.
   */
  partial?: boolean;
}

/**
 * verifyAudit checks entries (any order; grouped by chain, sorted by seq) and checkpoints. It reports,
 * per chain, the first entry that is out of place or altered and every checkpoint that is forged or does
 * not match the entries. It needs nothing but the data and the public keys (one, or every key that has
 * signed: each checkpoint names its key_id), so auditors can run it on an export (scripts/audit-verify.ts).
 */
export function verifyAudit(
  entries: readonly AuditRecord[],
  checkpoints: readonly Checkpoint[],
  publicKeys: KeyObject | readonly KeyObject[],
  options: VerifyOptions = {},
): VerifyResult {
  const keys = new Map((Array.isArray(publicKeys) ? (publicKeys as readonly KeyObject[]) : [publicKeys as KeyObject]).map((k) => [keyIdOf(k), k] as const));
  const problems: VerifyProblem[] = [];
  const byChain = new Map<string, AuditRecord[]>();
  for (const e of entries) {
    const list = byChain.get(e.chain) ?? [];
    list.push(e);
    byChain.set(e.chain, list);
  }
  const heads = new Map<string, Map<number, string>>();
  for (const [chain, list] of byChain) {
    list.sort((a, b) => a.seq - b.seq);
    const hashes = new Map<number, string>();
    heads.set(chain, hashes);
    const first = list[0]!;
    const partialStart = options.partial === true && first.seq > 1;
    let prev = partialStart ? first.prev_hash : GENESIS_HASH;
    let expectSeq = partialStart ? first.seq : 1;
    for (const e of list) {
      if (e.seq !== expectSeq) {
        problems.push({ chain, seq: expectSeq, reason: e.seq > expectSeq ? `entry ${expectSeq} is missing (next present is ${e.seq})` : `entry ${e.seq} appears twice` });
        break;
      }
      if (e.prev_hash !== prev) {
        problems.push({ chain, seq: e.seq, id: e.id, reason: 'prev_hash does not match the previous entry: an entry before it was changed, removed or reordered' });
        break;
      }
      if (entryHash(e) !== e.hash) {
        problems.push({ chain, seq: e.seq, id: e.id, reason: 'its content does not match its hash: the entry was edited' });
        break;
      }
      hashes.set(e.seq, e.hash);
      prev = e.hash;
      expectSeq++;
    }
  }
  const signed = new Map<string, number>();
  for (const c of checkpoints) {
    if (options.partial) {
      const first = byChain.get(c.chain)?.[0];
      if (first && c.seq < first.seq) continue;
    }
    const key = keys.get(c.key_id);
    if (!key) {
      problems.push({ chain: c.chain, seq: c.seq, reason: `checkpoint at entry ${c.seq} is signed by key ${c.key_id}, which is not among the trusted public keys` });
      continue;
    }
    if (!checkpointValid(c, key)) {
      problems.push({ chain: c.chain, seq: c.seq, reason: `checkpoint at entry ${c.seq} has an invalid signature` });
      continue;
    }
    const hashes = heads.get(c.chain);
    const h = hashes?.get(c.seq);
    if (h === undefined) {
      const chainBroken = problems.some((p) => p.chain === c.chain);
      if (!chainBroken) problems.push({ chain: c.chain, seq: c.seq, reason: `a signed checkpoint says entry ${c.seq} exists, but the log ends before it: newest entries were deleted` });
    } else if (h !== c.hash) {
      problems.push({ chain: c.chain, seq: c.seq, reason: `entry ${c.seq} does not match the signed checkpoint: the log was rewritten` });
    } else {
      signed.set(c.chain, Math.max(signed.get(c.chain) ?? 0, c.seq));
    }
  }
  problems.sort((a, b) => compareText(a.chain, b.chain) || a.seq - b.seq);
  const ranges = [...byChain]
    .map(([chain, list]) => ({ chain, first_seq: list[0]!.seq, last_seq: list.at(-1)!.seq, signed_seq: signed.get(chain) ?? 0 }))
    .sort((a, b) => compareText(a.chain, b.chain));
  return { ok: problems.length === 0, chains: byChain.size, entries: entries.length, checkpoints: checkpoints.length, problems, ranges };
}

// compareText orders by code unit, the same everywhere (localeCompare depends on the machine's locale).
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
