import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * REDACT_PATHS are the log fields that may carry a credential. pino replaces them before a line is
 * written, so a token or password that reaches a log call by mistake is not written either
 * (ARCHITECTURE.md §4.3). Tests grep the logs for the secrets they used.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-ward-token"]',
  'res.headers["set-cookie"]',
  'password',
  'token',
  'secret',
  '*.password',
  '*.token',
  '*.secret',
  '*.session.token',
  '*.invite.code',
  'body.password',
  // Secret values (ARCHITECTURE.md §4.3): request bodies of the secrets routes, delivered environments,
  // instance specs (process.env holds secrets), wherever a log call might carry them by mistake.
  'values',
  '*.values',
  'dotenv',
  '*.dotenv',
  'env',
  '*.env',
  '*.*.env',
  'secrets',
  '*.secrets',
];

/** newLogger makes the JSON logger every server role writes through. */
export function newLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'ward' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
