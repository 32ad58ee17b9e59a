import type { Context } from '../../command.ts';
import { formatTime } from '../../output.ts';

/** ApiCertificate is one certificate as /v1/apps/{app}/certs answers it (docs/api.md). */
export interface ApiCertificate {
  hostname: string;
  app: string | null;
  status: 'pending' | 'valid' | 'failing' | 'expired';
  not_after: string | null;
  renew_at: string | null;
  last_attempt_at: string | null;
  last_error: string | null;
  failures: number;
  next_attempt_at: string | null;
}

const when = (t: string | null) => (t ? formatTime(t) : '-');

/** printCertificate prints one certificate's status as label: value lines. */
export function printCertificate(ctx: Context, c: ApiCertificate): void {
  ctx.out.table(
    [
      ['hostname', c.hostname],
      ['app', c.app ?? '-'],
      ['status', c.status],
      ['expires', when(c.not_after)],
      ['renews', when(c.renew_at)],
      ['last attempt', when(c.last_attempt_at)],
      ['failures', String(c.failures)],
      ['next attempt', when(c.next_attempt_at)],
      ['last error', c.last_error ?? '-'],
    ],
    [
      { header: 'field', value: (r) => r[0]! },
      { header: 'value', value: (r) => r[1]! },
    ],
  );
}

export { when };
