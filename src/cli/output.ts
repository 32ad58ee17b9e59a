import type { TextSink } from './command.ts';

/**
 * Output is how commands print. The rule of shared/CLI.md: with `--json`, stdout carries exactly one
 * JSON document (an object, or an array for lists) and nothing else; without it, stdout carries the data
 * as aligned tables or fields. Progress and prose always go to stderr, so `ward … --json | jq` and
 * `ward … | grep` both see only data.
 */
export interface Output {
  readonly json: boolean;
  /**
   * result prints a command's data: as JSON when --json was given, else by calling human(), which uses
   * table/fields/line. Call it once per command.
   */
  result(value: unknown, human: () => void): void;
  /** table prints rows under upper-case column headers, aligned. */
  table<T>(rows: readonly T[], columns: readonly Column<T>[]): void;
  /** fields prints label/value pairs, labels aligned; undefined values are skipped. */
  fields(pairs: ReadonlyArray<readonly [label: string, value: string | undefined]>): void;
  /** line prints one line of data on stdout. */
  line(text: string): void;
  /** info prints prose for people on stderr; it never disturbs stdout. */
  info(text: string): void;
}

/** Column is one table column: a header and how to read the cell from a row. */
export interface Column<T> {
  header: string;
  value(row: T): string | undefined;
}

/** createOutput makes the Output of one command run. */
export function createOutput(stdout: TextSink, stderr: TextSink, opts: { json: boolean }): Output {
  let printed = false;
  // In JSON mode any human printing is a bug that would corrupt the document; fail instead of printing.
  const humanOnly = (what: string) => {
    if (opts.json) throw new Error(`output.${what} called in --json mode`);
  };
  return {
    json: opts.json,
    result(value, human) {
      if (printed) throw new Error('output.result called twice');
      printed = true;
      if (opts.json) stdout.write(JSON.stringify(value, null, 2) + '\n');
      else human();
    },
    table(rows, columns) {
      humanOnly('table');
      stdout.write(formatTable(rows, columns));
    },
    fields(pairs) {
      humanOnly('fields');
      stdout.write(formatFields(pairs));
    },
    line(text) {
      humanOnly('line');
      stdout.write(text + '\n');
    },
    info(text) {
      stderr.write(text + '\n');
    },
  };
}

/** formatTable renders rows as columns separated by three spaces; the last column is not padded. */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header.toUpperCase()), ...rows.map((r) => columns.map((c) => clean(c.value(r) ?? '')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => width(row[i]!))));
  return cells
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - width(cell)))).join('   ').trimEnd())
    .join('\n') + '\n';
}

/** formatFields renders `Label   value` lines with the values aligned. */
export function formatFields(pairs: ReadonlyArray<readonly [string, string | undefined]>): string {
  const shown = pairs.filter((p): p is readonly [string, string] => p[1] !== undefined);
  const w = Math.max(0, ...shown.map(([label]) => width(label)));
  return shown.map(([label, value]) => `${label}${' '.repeat(w - width(label))}   ${clean(value)}`.trimEnd() + '\n').join('');
}

/** formatTime shows an ISO timestamp to the second, which is what a person reading a table needs. */
export function formatTime(iso: string | undefined): string | undefined {
  if (iso === undefined) return undefined;
  return iso.replace(/\.\d+Z$/, 'Z');
}

// Values come from the server; a name with a newline or an escape sequence must not redraw the terminal.
function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function width(s: string): number {
  return [...s].length;
}
