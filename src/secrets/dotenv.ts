/**
 * DotenvError says where a .env file cannot be read: the line and what is wrong, never the line's text,
 * because that text may be a secret and error messages are logged and printed.
 */
export class DotenvError extends Error {
  readonly line: number;
  constructor(line: number, problem: string) {
    super(`line ${line}: ${problem}`);
    this.name = 'DotenvError';
    this.line = line;
  }
}

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\', $: '$' };

/**
 * parseDotenv reads a .env file the way docker compose, dotenv and `fly secrets import` do: `KEY=VALUE`
 * lines, an optional `export ` in front, `#` comments and blank lines ignored. Values may be unquoted
 * (trimmed; ` #` starts a comment), single-quoted (literal) or double-quoted (escapes \n \r \t \" \\ \$,
 * and may span lines). No variable expansion: a secret is what was written. A key given twice keeps the
 * last value, as those tools do. Keys are returned as written; the caller checks them against its rules.
 */
export function parseDotenv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const src = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  let i = 0;
  let line = 1;
  while (i < src.length) {
    const eol = src.indexOf('\n', i);
    const end = eol === -1 ? src.length : eol;
    const raw = src.slice(i, end);
    const startLine = line;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      i = end + 1;
      line += 1;
      continue;
    }
    const body = trimmed.startsWith('export ') ? trimmed.slice(7).trimStart() : trimmed;
    const eq = body.indexOf('=');
    if (eq <= 0) throw new DotenvError(startLine, 'expected KEY=VALUE');
    const key = body.slice(0, eq).trim();
    if (!KEY_RE.test(key)) throw new DotenvError(startLine, 'the key is not a valid variable name');
    // Work on the rest of the source from the value's first character: a double-quoted value may run on.
    // The first "=" of the line is the separator: neither a key nor "export " contains one.
    const valueStart = i + raw.indexOf('=') + 1;
    let j = valueStart;
    while (j < src.length && (src[j] === ' ' || src[j] === '\t')) j += 1;
    const q = src[j];
    let value: string;
    if (q === '"' || q === "'") {
      let k = j + 1;
      let v = '';
      let closed = false;
      while (k < src.length) {
        const c = src[k]!;
        if (c === q) {
          closed = true;
          break;
        }
        if (c === '\n') {
          if (q === "'") break;
          line += 1;
        }
        if (q === '"' && c === '\\' && k + 1 < src.length) {
          const n = src[k + 1]!;
          v += ESCAPES[n] ?? `\\${n}`;
          k += 2;
          continue;
        }
        v += c;
        k += 1;
      }
      if (!closed) throw new DotenvError(startLine, `the ${q === '"' ? 'double' : 'single'}-quoted value is not closed`);
      // After the closing quote only blanks and a comment may follow on that line.
      const after = src.indexOf('\n', k + 1);
      const rest = src.slice(k + 1, after === -1 ? src.length : after).trim();
      if (rest !== '' && !rest.startsWith('#')) throw new DotenvError(line, 'unexpected text after the closing quote');
      value = v;
      i = after === -1 ? src.length : after + 1;
      line += 1;
    } else {
      let v = src.slice(j, end);
      const hash = v.search(/\s#/);
      if (hash >= 0) v = v.slice(0, hash);
      value = v.trim();
      i = end + 1;
      line += 1;
    }
    out.delete(key);
    out.set(key, value);
  }
  return out;
}
