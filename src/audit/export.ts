import type { KeyObject } from 'node:crypto';
import type { Store } from '../store/index.ts';
import { keyIdOf, publicKeyFromPem, verifyAudit, type AuditRecord, type Checkpoint, type VerifyProblem, type VerifyResult } from './chain.ts';

/**
 * An audit export is a file an auditor can check without Ward's server: JSON Lines, UTF-8.
 *
 *   {"type":"header","format":"ward-audit-export/1","exported_at":…,"org":…,"since":…,"public_keys":[{"key_id":…,"pem":…}]}
 *   {"type":"entry", …every AuditRecord field…}        one per entry, chain by chain, in seq order
 *   {"type":"checkpoint", …every Checkpoint field…}    the signed checkpoints of those chains
 *
 * CSV exports hold the same entries for spreadsheets; they carry no checkpoints or keys and cannot be
 * verified. JSONL is the form that verifies (verifyExport, scripts/audit-verify.ts).
 */
export const EXPORT_FORMAT = 'ward-audit-export/1';

export type ExportFormat = 'jsonl' | 'csv';

export interface ExportOptions {
  /** orgId exports that org's chain; undefined exports every chain (the whole server). */
  orgId?: string | undefined;
  /**
   * since starts each chain at its first entry at or after this time; the chain then runs unbroken to its
   * newest entry, whatever later entries' clocks say, so the partial chain still verifies.
   */
  since?: string | undefined;
  format: ExportFormat;
  /** now is the export's timestamp (exported_at). */
  now: string;
}

export interface ExportHeader {
  type: 'header';
  format: string;
  exported_at: string;
  org: string | null;
  since: string | null;
  public_keys: Array<{ key_id: string; pem: string }>;
}

/** The columns of a CSV export, in order: every AuditRecord field. */
export const CSV_COLUMNS = [
  'chain', 'seq', 'id', 'at', 'org_id', 'actor_type', 'actor_id', 'actor_label', 'action', 'target',
  'outcome', 'source_ip', 'request_id', 'details', 'prev_hash', 'hash',
] as const satisfies ReadonlyArray<keyof AuditRecord>;

const PAGE = 500;

/**
 * exportAudit yields an export line by line (each ending in "\n"), reading the store a page at a time so a
 * large log streams instead of filling memory.
 */
export async function* exportAudit(store: Store, opts: ExportOptions): AsyncGenerator<string> {
  const chains = opts.orgId !== undefined ? [opts.orgId] : await store.audit.chains();
  if (opts.format === 'csv') {
    yield `${CSV_COLUMNS.join(',')}\r\n`;
    for (const chain of chains) {
      for await (const e of chainEntries(store, chain, opts.since)) yield `${CSV_COLUMNS.map((c) => csvCell(e[c])).join(',')}\r\n`;
    }
    return;
  }
  const keys = await store.audit.keys();
  const header: ExportHeader = {
    type: 'header',
    format: EXPORT_FORMAT,
    exported_at: opts.now,
    org: opts.orgId ?? null,
    since: opts.since ?? null,
    public_keys: keys.map((k) => ({ key_id: k.keyId, pem: k.publicKeyPem })),
  };
  yield `${JSON.stringify(header)}\n`;
  const firstSeq = new Map<string, number>();
  for (const chain of chains) {
    for await (const e of chainEntries(store, chain, opts.since)) {
      if (!firstSeq.has(chain)) firstSeq.set(chain, e.seq);
      yield `${JSON.stringify({ type: 'entry', ...e })}\n`;
    }
  }
  for (const chain of chains) {
    const from = firstSeq.get(chain);
    // A partial export leaves out the checkpoints of entries it does not hold; they could not be checked.
    if (opts.since !== undefined && from === undefined) continue;
    for (const c of await store.audit.checkpoints(chain)) {
      if (from !== undefined && c.seq < from) continue;
      yield `${JSON.stringify({ type: 'checkpoint', ...c })}\n`;
    }
  }
}

async function* chainEntries(store: Store, chain: string, since: string | undefined): AsyncGenerator<AuditRecord> {
  let after = 0;
  if (since !== undefined) {
    const [first] = await store.audit.list({ chain, since, limit: 1 });
    if (!first) return;
    after = first.seq - 1;
  }
  for (;;) {
    const page = await store.audit.list({ chain, afterSeq: after, limit: PAGE });
    yield* page;
    if (page.length < PAGE) return;
    after = page.at(-1)!.seq;
  }
}

/**
 * csvCell quotes a value for RFC 4180 CSV. Cells that a spreadsheet would run as a formula (starting with
 * = + - @ or a tab or carriage return) get a leading apostrophe (OWASP's advice against CSV injection): an
 * actor's label or a target name is text written by users.
 */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** ExportVerifyResult is verifyAudit's answer for an export file, with what the file says about itself. */
export interface ExportVerifyResult extends VerifyResult {
  header: ExportHeader | undefined;
  /** keyIds are the ids of the keys checkpoints were checked against. */
  keyIds: string[];
  /** keysFrom says whether those keys came from the file's own header or were given by the auditor. */
  keysFrom: 'file' | 'trusted';
}

export interface VerifyExportOptions {
  /**
   * trustedKeys are public keys the auditor got from somewhere other than the file (the server's
   * operator, an earlier export). Given, only they are trusted; otherwise the keys in the file's header
   * are, which proves the file is intact but not that whoever wrote it did not also re-sign it.
   */
  trustedKeys?: readonly KeyObject[];
}

/**
 * verifyExport checks a JSONL export offline: its structure (every line parses, has a known type, and
 * the header comes first), every chain's hashes, and every checkpoint's signature. Problems name the
 * chain, seq and entry id, and the line of the file.
 */
export function verifyExport(text: string, options: VerifyExportOptions = {}): ExportVerifyResult {
  const problems: VerifyProblem[] = [];
  const entries: AuditRecord[] = [];
  const checkpoints: Checkpoint[] = [];
  const lineOf = new Map<string, number>();
  let header: ExportHeader | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, i) => {
    const line = i + 1;
    const structural = (reason: string) => problems.push({ chain: '', seq: 0, line, reason: `line ${line}: ${reason}` });
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch {
      return structural('not valid JSON');
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return structural('not a JSON object');
    const { type, ...rest } = obj as Record<string, unknown>;
    if (line === 1) {
      if (type !== 'header' || rest.format !== EXPORT_FORMAT) return structural(`the first line must be the ${EXPORT_FORMAT} header`);
      if (!Array.isArray(rest.public_keys)) return structural('the header has no public_keys');
      header = obj as ExportHeader;
      return;
    }
    if (type === 'entry') {
      const bad = entryShapeProblem(rest);
      if (bad) return structural(bad);
      const e = rest as unknown as AuditRecord;
      entries.push(e);
      lineOf.set(`${e.chain}\u0000${e.seq}`, line);
    } else if (type === 'checkpoint') {
      const bad = checkpointShapeProblem(rest);
      if (bad) return structural(bad);
      checkpoints.push(rest as unknown as Checkpoint);
    } else {
      structural(`unknown line type ${JSON.stringify(type)}`);
    }
  });
  if (lines.length === 0) problems.push({ chain: '', seq: 0, reason: 'the file is empty' });

  let keys: KeyObject[] = [];
  let keysFrom: 'file' | 'trusted' = 'file';
  if (options.trustedKeys && options.trustedKeys.length > 0) {
    keys = [...options.trustedKeys];
    keysFrom = 'trusted';
  } else {
    for (const k of header?.public_keys ?? []) {
      try {
        const key = publicKeyFromPem(String(k.pem));
        if (keyIdOf(key) !== k.key_id) throw new Error('key id does not match');
        keys.push(key);
      } catch {
        problems.push({ chain: '', seq: 0, line: 1, reason: `line 1: public key ${JSON.stringify(k.key_id)} in the header is not a valid Ed25519 public key with that id` });
      }
    }
  }
  const result = verifyAudit(entries, checkpoints, keys, { partial: header?.since != null });
  for (const p of result.problems) {
    const line = lineOf.get(`${p.chain}\u0000${p.seq}`);
    if (line !== undefined) p.line = line;
  }
  const all = [...problems, ...result.problems];
  return { ...result, ok: all.length === 0, problems: all, header, keyIds: keys.map(keyIdOf), keysFrom };
}

const STRING_FIELDS = ['chain', 'id', 'at', 'actor_type', 'action', 'outcome', 'prev_hash', 'hash'] as const;
const NULLABLE_FIELDS = ['org_id', 'actor_id', 'actor_label', 'target', 'source_ip', 'request_id'] as const;

// The hash covers every field, so a wrong type would be caught as an edit too; checking the shape first
// gives a clearer reason and keeps odd values (a seq of "7") from confusing the ordering.
function entryShapeProblem(e: Record<string, unknown>): string | undefined {
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) return 'entry has no valid seq';
  for (const f of STRING_FIELDS) if (typeof e[f] !== 'string') return `entry ${String(e.seq)} has no valid ${f}`;
  for (const f of NULLABLE_FIELDS) if (e[f] !== null && typeof e[f] !== 'string') return `entry ${String(e.seq)} has no valid ${f}`;
  if (typeof e.details !== 'object' || e.details === null || Array.isArray(e.details)) return `entry ${String(e.seq)} has no valid details`;
  return undefined;
}

function checkpointShapeProblem(c: Record<string, unknown>): string | undefined {
  if (!Number.isSafeInteger(c.seq) || (c.seq as number) < 1) return 'checkpoint has no valid seq';
  for (const f of ['chain', 'hash', 'at', 'key_id', 'signature']) if (typeof c[f] !== 'string') return `checkpoint ${String(c.seq)} has no valid ${f}`;
  return undefined;
}

/**
 * describeVerify renders a verification result for people, first line the verdict: `OK: …`, or `FAILED:`
 * naming the first bad entry (chain, seq, id, line, reason) followed by any further problems. The CLI and
 * scripts/audit-verify.ts print it.
 */
export function describeVerify(r: VerifyResult & { keyIds?: string[]; keysFrom?: 'file' | 'trusted' }): string[] {
  const out: string[] = [];
  const where = (p: VerifyProblem) =>
    [p.chain && `chain ${p.chain}`, p.seq > 0 && `seq ${p.seq}`, p.id && `entry ${p.id}`, p.line !== undefined && `line ${p.line}`].filter(Boolean).join(', ');
  const [first, ...rest] = r.problems;
  if (first) {
    const w = where(first);
    out.push(`FAILED: ${w ? `${w}: ` : ''}${first.reason.replace(/^line \d+: /, '')}`);
    for (const p of rest) {
      const w2 = where(p);
      out.push(`  also: ${w2 ? `${w2}: ` : ''}${p.reason.replace(/^line \d+: /, '')}`);
    }
  } else {
    out.push(`OK: ${r.entries} ${r.entries === 1 ? 'entry' : 'entries'} in ${r.chains} ${r.chains === 1 ? 'chain' : 'chains'} and ${r.checkpoints} signed ${r.checkpoints === 1 ? 'checkpoint' : 'checkpoints'} verified`);
  }
  for (const g of r.ranges) {
    const unsigned = g.last_seq > g.signed_seq ? `; entries ${Math.max(g.signed_seq + 1, g.first_seq)}..${g.last_seq} are not yet covered by a signed checkpoint` : '';
    out.push(`  chain ${g.chain}: entries ${g.first_seq}..${g.last_seq}${g.first_seq > 1 ? ' (a partial export: earlier entries are not in it)' : ''}, signed up to ${g.signed_seq}${unsigned}`);
  }
  if (r.keyIds) {
    const keys = r.keyIds.length > 0 ? r.keyIds.join(', ') : 'none';
    out.push(r.keysFrom === 'file'
      ? `  keys: ${keys}, taken from the file itself; check them against the server's (or pass --public-key) to rule out a re-signed file`
      : `  keys: ${keys}`);
  }
  return out;
}
