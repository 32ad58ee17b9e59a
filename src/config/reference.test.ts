import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'smol-toml';
import { locateKeys } from './locate.ts';
import { isTable } from './paths.ts';
import { appConfigKeyPaths, parseAppConfig } from './index.ts';

/**
 * docs/ward.reference.toml is documentation, a fixture and (later) `ward docs` output at once. These
 * tests keep it honest: it validates cleanly, it mentions every key the schema knows, and every key in
 * it has a comment.
 */
const REFERENCE = new URL('../../docs/ward.reference.toml', import.meta.url);
const text = readFileSync(REFERENCE, 'utf8');

/** present tells whether a schema path (`a.b[].c`, `env.*`) is written somewhere in a parsed document. */
function present(value: unknown, segments: string[]): boolean {
  if (segments.length === 0) return value !== undefined;
  const [head, ...rest] = segments;
  if (head === '[]') return Array.isArray(value) && value.some((el) => present(el, rest));
  if (!isTable(value)) return false;
  if (head === '*') return Object.values(value).some((v) => present(v, rest));
  return present(value[head!], rest);
}

function splitSchemaPath(p: string): string[] {
  return p.split('.').flatMap((seg) => (seg.endsWith('[]') ? [seg.slice(0, -2), '[]'] : [seg]));
}

describe('docs/ward.reference.toml', () => {
  test('validates with no errors and no warnings', () => {
    const r = parseAppConfig(text, 'docs/ward.reference.toml');
    assert.deepEqual(r.diagnostics, []);
    assert.ok(r.config);
  });

  test('sets every key the schema knows', () => {
    const doc = parse(text);
    const missing = appConfigKeyPaths().filter((p) => !present(doc, splitSchemaPath(p)));
    assert.deepEqual(missing, [], 'document these keys in docs/ward.reference.toml');
  });

  test('shows the [[vm]] spelling, which cannot sit beside [resources]', () => {
    assert.match(text, /^#\s+\[\[vm\]\]$/m);
  });

  test('has a comment right above every key and table', () => {
    const known = new Set(appConfigKeyPaths());
    const lines = text.split('\n');
    const bare: string[] = [];
    for (const [path, pos] of locateKeys(text)) {
      const generic = path.replace(/\[\d+\]/g, '[]');
      // Array elements and record entries (env names, header names) are examples, not keys.
      if (!known.has(generic) || path.endsWith(']')) continue;
      if (!lines[pos.line - 2]?.trim().startsWith('#')) bare.push(`${path} (line ${pos.line})`);
    }
    assert.deepEqual(bare, []);
  });
});
