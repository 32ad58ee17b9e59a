#!/usr/bin/env node
// scripts/audit-verify.ts verifies a Ward audit export (JSONL, from `ward audit export`) offline: every
// hash link and every signed checkpoint, with nothing but Node.js 24 and this repository's src/audit
// (which needs only node:crypto). An auditor runs:
//
//   node scripts/audit-verify.ts EXPORT.jsonl [--public-key KEY.pem]...
//
// Without --public-key the keys in the file's header are used: that proves the file is intact as written,
// not who wrote it. With --public-key (the server's public key, obtained separately: docs/audit.md) only
// those keys are trusted. Exit status: 0 intact, 1 tampered or malformed, 2 usage or unreadable file.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { publicKeyFromPem } from '../src/audit/chain.ts';
import { describeVerify, verifyExport } from '../src/audit/export.ts';

const USAGE = 'usage: node scripts/audit-verify.ts EXPORT.jsonl [--public-key KEY.pem]...';

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { 'public-key': { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } } });
} catch (e) {
  fail((e as Error).message);
}
if (parsed.values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (parsed.positionals.length !== 1) fail('give exactly one export file');
const file = parsed.positionals[0]!;

let text: string;
try {
  text = readFileSync(file, 'utf8');
} catch (e) {
  fail(`cannot read ${file}: ${(e as Error).message}`);
}
const trustedKeys = (parsed.values['public-key'] ?? []).map((f) => {
  try {
    return publicKeyFromPem(readFileSync(f, 'utf8'));
  } catch (e) {
    return fail(`cannot read the public key ${f}: ${(e as Error).message}`);
  }
});

const result = verifyExport(text, { trustedKeys });
const lines = describeVerify(result);
(result.ok ? process.stdout : process.stderr).write(`${file}: ${lines.join('\n')}\n`);
process.exitCode = result.ok ? 0 : 1;
