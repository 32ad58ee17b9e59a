/**
 * A small cron parser for backup schedules: the five standard fields (minute hour day-of-month month
 * day-of-week) with `*`, lists, ranges and steps, three-letter month and day names, and the macros
 * `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`). Times are UTC:
 * a server's local time zone is not something a schedule stored in a shared database should depend on.
 *
 * As in Vixie cron (and POSIX), when both day-of-month and day-of-week are restricted, a day matches if
 * either does; `0 3 1 * 1` runs on the 1st and on every Monday.
 */

/** CronSchedule is a parsed expression: next() finds its next time. */
export interface CronSchedule {
  /** source is the expression as given. */
  readonly source: string;
  /** next returns the first matching minute strictly after `after` (UTC), or throws if none within 8 years. */
  next(after: Date): Date;
}

/** CronError is an expression that does not parse; its message says which field and why. */
export class CronError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CronError';
  }
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** namesFrom is the number of the first name (1 for months, 0 for days). */
  namesFrom?: number;
}

const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  // 7 is Sunday too, as in most crons.
  { name: 'day of week', min: 0, max: 7, names: DAYS, namesFrom: 0 },
];

function value(text: string, f: FieldSpec): number {
  const lower = text.toLowerCase();
  const named = f.names?.indexOf(lower) ?? -1;
  if (named >= 0) return named + (f.namesFrom ?? 0);
  if (!/^\d{1,2}$/.test(text)) throw new CronError(`${f.name}: "${text}" is not a number${f.names ? ' or a name' : ''}`);
  const n = Number(text);
  if (n < f.min || n > f.max) throw new CronError(`${f.name}: ${n} is outside ${f.min}–${f.max}`);
  return n;
}

/** parseField returns the set of values a field allows, and whether it was `*` (unrestricted). */
function parseField(text: string, f: FieldSpec): { set: Set<number>; any: boolean } {
  const set = new Set<number>();
  let any = false;
  for (const part of text.split(',')) {
    if (part === '') throw new CronError(`${f.name}: empty list item in "${text}"`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) throw new CronError(`${f.name}: "${part}" has two steps`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d{1,2}$/.test(stepText) || Number(stepText) === 0) throw new CronError(`${f.name}: step "${stepText}" must be a number from 1`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = f.min;
      hi = f.max === 7 ? 6 : f.max;
      if (stepText === undefined) any = true;
    } else {
      const [a, b, more] = range!.split('-');
      if (more !== undefined) throw new CronError(`${f.name}: "${range}" is not a range`);
      lo = value(a!, f);
      hi = b === undefined ? (stepText === undefined ? lo : (f.max === 7 ? 6 : f.max)) : value(b, f);
      if (hi < lo) throw new CronError(`${f.name}: range "${range}" runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) set.add(f.max === 7 && v === 7 ? 0 : v);
  }
  return { set, any };
}

/** parseCron parses a five-field expression or a macro; it throws CronError with the reason. */
export function parseCron(expression: string): CronSchedule {
  const source = expression.trim();
  const expanded = MACROS[source.toLowerCase()] ?? source;
  if (expanded.startsWith('@')) throw new CronError(`unknown macro "${source}" (use @hourly, @daily, @weekly, @monthly or @yearly)`);
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5) throw new CronError(`a schedule has 5 fields (minute hour day-of-month month day-of-week), "${source}" has ${parts.length}`);
  const [minute, hour, dom, month, dow] = parts.map((p, i) => parseField(p, FIELDS[i]!)) as [
    ReturnType<typeof parseField>, ReturnType<typeof parseField>, ReturnType<typeof parseField>, ReturnType<typeof parseField>, ReturnType<typeof parseField>,
  ];
  const dayMatches = (d: Date): boolean => {
    const byDom = dom.set.has(d.getUTCDate());
    const byDow = dow.set.has(d.getUTCDay());
    if (dom.any && dow.any) return true;
    if (dom.any) return byDow;
    if (dow.any) return byDom;
    return byDom || byDow;
  };
  return {
    source,
    next(after: Date): Date {
      const t = new Date(after.getTime());
      t.setUTCSeconds(0, 0);
      t.setUTCMinutes(t.getUTCMinutes() + 1);
      const limit = after.getTime() + 8 * 366 * 86_400_000;
      // Skip whole months, days and hours that cannot match, then walk minutes: at most a few thousand steps.
      while (t.getTime() <= limit) {
        if (!month.set.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!dayMatches(t)) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!hour.set.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
          continue;
        }
        if (!minute.set.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
          continue;
        }
        return t;
      }
      throw new CronError(`"${source}" never matches (for example February 30th)`);
    },
  };
}

/** cronProblem returns why an expression does not parse, or undefined when it does. */
export function cronProblem(expression: string): string | undefined {
  try {
    // A schedule that parses but never fires (February 30th) is as wrong as one that does not parse.
    parseCron(expression).next(new Date(Date.UTC(2000, 0, 1)));
    return undefined;
  } catch (e) {
    if (e instanceof CronError) return e.message;
    throw e;
  }
}
