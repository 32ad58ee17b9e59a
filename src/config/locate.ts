import { formatPath, type PathSegment } from './paths.ts';

/** SourcePosition is a 1-based line and column in a TOML document. */
export interface SourcePosition {
  line: number;
  column: number;
}

/**
 * locateKeys maps every key path in a TOML document to where it is written: a key to the start of the
 * key, a table or array-of-tables element to its header, an inline array element to its value. The
 * parser (smol-toml) keeps no positions, and a diagnostic without a line number sends users hunting, so
 * this scanner walks the text once more. It runs only on documents the parser accepted, so it can be
 * lenient: on anything it does not understand it stops and returns what it found so far.
 */
export function locateKeys(text: string): Map<string, SourcePosition> {
  const found = new Map<string, SourcePosition>();
  try {
    new Scanner(text, found).document();
  } catch {
    // A best-effort map is still useful; positions are a convenience, never needed for correctness.
  }
  return found;
}

/**
 * positionOf finds where a path, or else its nearest written ancestor, appears: a missing required key
 * is reported at its table's header.
 */
export function positionOf(positions: Map<string, SourcePosition>, path: string): SourcePosition | undefined {
  let p = path;
  for (;;) {
    const pos = positions.get(p);
    if (pos) return pos;
    const parent = parentPath(p);
    if (parent === undefined) return undefined;
    p = parent;
  }
}

function parentPath(p: string): string | undefined {
  if (p === '') return undefined;
  if (p.endsWith(']')) return p.slice(0, p.lastIndexOf('['));
  // Quoted keys may contain dots, so find the last dot outside quotes.
  let inQuote = false;
  let lastDot = -1;
  for (let i = 0; i < p.length; i++) {
    const ch = p[i];
    if (ch === '\\' && inQuote) i++;
    else if (ch === '"') inQuote = !inQuote;
    else if (ch === '.' && !inQuote) lastDot = i;
  }
  return lastDot === -1 ? '' : p.slice(0, lastDot);
}

class Scanner {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  /** table is the segments of the current `[table]` or `[[array]]` element, indices resolved. */
  private table: PathSegment[] = [];
  /** arrayCounts counts elements of each array of tables seen so far, by formatted path. */
  private readonly arrayCounts = new Map<string, number>();
  private readonly text: string;
  private readonly found: Map<string, SourcePosition>;

  constructor(text: string, found: Map<string, SourcePosition>) {
    this.text = text;
    this.found = found;
  }

  document(): void {
    for (;;) {
      this.skipBlank(true);
      if (this.pos >= this.text.length) return;
      if (this.text.startsWith('[[', this.pos)) this.header(true);
      else if (this.text[this.pos] === '[') this.header(false);
      else this.keyValue(this.table);
    }
  }

  private here(): SourcePosition {
    return { line: this.line, column: this.pos - this.lineStart + 1 };
  }

  private record(segments: PathSegment[], at: SourcePosition): void {
    const key = formatPath(segments);
    if (!this.found.has(key)) this.found.set(key, at);
  }

  private advance(n = 1): void {
    for (let i = 0; i < n; i++) {
      if (this.text[this.pos] === '\n') {
        this.line++;
        this.lineStart = this.pos + 1;
      }
      this.pos++;
    }
  }

  /** skipBlank skips spaces, comments and, when newlines is true, line breaks. */
  private skipBlank(newlines: boolean): void {
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos];
      if (ch === ' ' || ch === '\t' || ch === '\r' || (newlines && ch === '\n')) this.advance();
      else if (ch === '#') {
        while (this.pos < this.text.length && this.text[this.pos] !== '\n') this.advance();
      } else return;
    }
  }

  private header(isArray: boolean): void {
    const at = this.here();
    this.advance(isArray ? 2 : 1);
    const keys = this.dottedKey();
    this.skipBlank(false);
    this.advance(isArray ? 2 : 1);
    // Earlier segments that name an array of tables refer to its latest element, as TOML defines.
    const resolved: PathSegment[] = [];
    keys.forEach((k, i) => {
      resolved.push(k);
      const count = this.arrayCounts.get(formatPath(resolved));
      const last = i === keys.length - 1;
      if (last && isArray) {
        this.record(resolved, at);
        this.arrayCounts.set(formatPath(resolved), (count ?? 0) + 1);
        resolved.push(count ?? 0);
      } else if (count !== undefined) {
        resolved.push(count - 1);
      }
      this.record(resolved, at);
    });
    this.table = resolved;
  }

  private keyValue(prefix: PathSegment[]): void {
    const at = this.here();
    const keys = this.dottedKey();
    const segments = [...prefix];
    for (const k of keys) {
      segments.push(k);
      this.record(segments, at);
    }
    this.skipBlank(false);
    if (this.text[this.pos] !== '=') throw new Error('expected =');
    this.advance();
    this.skipBlank(false);
    this.value(segments);
  }

  private dottedKey(): string[] {
    const keys: string[] = [];
    for (;;) {
      this.skipBlank(false);
      keys.push(this.simpleKey());
      this.skipBlank(false);
      if (this.text[this.pos] !== '.') return keys;
      this.advance();
    }
  }

  private simpleKey(): string {
    const ch = this.text[this.pos];
    if (ch === '"' || ch === "'") {
      const start = this.pos;
      this.skipString();
      const raw = this.text.slice(start, this.pos);
      if (ch === "'") return raw.slice(1, -1);
      try {
        return JSON.parse(raw) as string;
      } catch {
        return raw.slice(1, -1);
      }
    }
    const start = this.pos;
    while (this.pos < this.text.length && /[A-Za-z0-9_-]/.test(this.text[this.pos]!)) this.advance();
    if (this.pos === start) throw new Error('expected a key');
    return this.text.slice(start, this.pos);
  }

  /** skipString skips one basic, literal or multi-line string starting at the current position. */
  private skipString(): void {
    const quote = this.text[this.pos]!;
    const multi = this.text.startsWith(quote.repeat(3), this.pos);
    this.advance(multi ? 3 : 1);
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos];
      if (ch === '\\' && quote === '"') {
        this.advance(2);
        continue;
      }
      if (multi && this.text.startsWith(quote.repeat(3), this.pos)) {
        this.advance(3);
        // A multi-line string may end with up to two extra quotes that belong to its content.
        while (this.text[this.pos] === quote) this.advance();
        return;
      }
      if (!multi && ch === quote) {
        this.advance();
        return;
      }
      this.advance();
    }
  }

  private value(path: PathSegment[]): void {
    const ch = this.text[this.pos];
    if (ch === '"' || ch === "'") return this.skipString();
    if (ch === '[') {
      this.advance();
      for (let i = 0; ; i++) {
        this.skipBlank(true);
        if (this.text[this.pos] === ']') break;
        this.record([...path, i], this.here());
        this.value([...path, i]);
        this.skipBlank(true);
        if (this.text[this.pos] === ',') this.advance();
        else break;
      }
      this.skipBlank(true);
      this.advance();
      return;
    }
    if (ch === '{') {
      this.advance();
      for (;;) {
        this.skipBlank(true);
        if (this.text[this.pos] === '}') break;
        this.keyValue(path);
        this.skipBlank(true);
        if (this.text[this.pos] === ',') this.advance();
        else break;
      }
      this.skipBlank(true);
      this.advance();
      return;
    }
    while (this.pos < this.text.length && !/[,\]}#\n]/.test(this.text[this.pos]!)) this.advance();
  }
}
