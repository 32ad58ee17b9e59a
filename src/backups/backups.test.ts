import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cronProblem, parseCron } from './cron.ts';
import { backupArgv, forgetArgv, judgeBackup, redactRepository, repositoryKind, ResticError, stderrTail } from './restic.ts';
import { DEFAULT_RETENTION, retentionArgs, retentionProblem } from './retention.ts';

const at = (s: string) => new Date(s);

describe('cron', () => {
  const cases: Array<[expr: string, after: string, next: string]> = [
    ['@daily', '2026-03-01T10:00:00Z', '2026-03-02T00:00:00.000Z'],
    ['@hourly', '2026-03-01T10:00:00Z', '2026-03-01T11:00:00.000Z'],
    ['30 2 * * *', '2026-03-01T02:30:00Z', '2026-03-02T02:30:00.000Z'],
    ['30 2 * * *', '2026-03-01T02:29:59Z', '2026-03-01T02:30:00.000Z'],
    ['*/15 * * * *', '2026-03-01T10:07:00Z', '2026-03-01T10:15:00.000Z'],
    ['0 0 * * sun', '2026-03-04T12:00:00Z', '2026-03-08T00:00:00.000Z'],
    ['0 0 * * 7', '2026-03-04T12:00:00Z', '2026-03-08T00:00:00.000Z'],
    ['0 3 1 * 1', '2026-03-01T04:00:00Z', '2026-03-02T03:00:00.000Z'], // day of month OR day of week
    ['0 0 29 feb *', '2026-03-01T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ['0 0 1 jan *', '2026-12-31T23:59:00Z', '2027-01-01T00:00:00.000Z'],
    ['5-10/5 1,2 * * *', '2026-03-01T01:06:00Z', '2026-03-01T01:10:00.000Z'],
    ['0 12 * * mon-fri', '2026-03-06T13:00:00Z', '2026-03-09T12:00:00.000Z'],
  ];
  for (const [expr, after, next] of cases) {
    test(`${expr} after ${after}`, () => assert.equal(parseCron(expr).next(at(after)).toISOString(), next));
  }

  test('bad expressions say why', () => {
    for (const [expr, why] of [
      ['* * * *', /5 fields/],
      ['60 * * * *', /minute: 60 is outside/],
      ['* * * * 8', /day of week/],
      ['*/0 * * * *', /step/],
      ['5-1 * * * *', /backwards/],
      ['@sometimes', /unknown macro/],
      ['0 0 30 feb *', /never matches/],
      ['x * * * *', /not a number/],
      ['1,,2 * * * *', /empty list item/],
    ] as const) {
      assert.match(cronProblem(expr) ?? 'parsed', why, expr);
    }
    assert.equal(cronProblem('0 2 * * *'), undefined);
  });
});

describe('retention', () => {
  test('defaults and flags', () => {
    assert.deepEqual(DEFAULT_RETENTION, { daily: 7, weekly: 4, monthly: 12, yearly: 6 });
    assert.deepEqual(retentionArgs(DEFAULT_RETENTION), ['--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '12', '--keep-yearly', '6']);
    assert.deepEqual(retentionArgs({ daily: 0, weekly: 2, monthly: 0, yearly: 0 }), ['--keep-weekly', '2']);
  });
  test('a policy that keeps nothing, or nonsense, is refused', () => {
    assert.match(retentionProblem({ daily: 0, weekly: 0, monthly: 0, yearly: 0 }) ?? '', /keeps nothing/);
    assert.match(retentionProblem({ daily: -1, weekly: 0, monthly: 0, yearly: 1 }) ?? '', /daily/);
    assert.match(retentionProblem({ daily: 1.5, weekly: 0, monthly: 0, yearly: 1 }) ?? '', /daily/);
    assert.equal(retentionProblem(DEFAULT_RETENTION), undefined);
  });
});

describe('restic argv and results', () => {
  test('repositories Ward accepts', () => {
    const table: Array<[string, string | undefined]> = [
      ['/srv/backups/acme', 'local'],
      ['relative/path', undefined],
      ['sftp:backup@host:/srv/restic', 'sftp'],
      ['sftp://backup@host:2222//srv/restic', 'sftp'],
      ['s3:s3.amazonaws.com/bucket/acme', 's3'],
      ['s3:https://minio.internal:9000/bucket', 's3'],
      ['rest:https://user:pw@backup.example.com:8000/acme/', 'rest'],
      ['rest:http://127.0.0.1:8000/', 'rest'],
      ['b2:bucket:path', undefined],
      ['-o evil', undefined],
      ['/path\nwith newline', undefined],
      ['', undefined],
    ];
    for (const [repo, kind] of table) assert.equal(repositoryKind(repo), kind, repo);
  });

  test('restic\'s messages lose any password of a repository URL', () => {
    assert.equal(stderrTail('reading repository password from stdin\nFatal: unable to open repository at rest:https://u:hunter2@h:8000/x/: 401'), 'Fatal: unable to open repository at rest:https://u:***@h:8000/x/: 401');
  });

  test('passwords in repository URLs are redacted', () => {
    assert.equal(redactRepository('rest:https://user:s3cret@host:8000/acme/'), 'rest:https://user:***@host:8000/acme/');
    assert.equal(redactRepository('rest:http://127.0.0.1:8000/'), 'rest:http://127.0.0.1:8000/');
    assert.equal(redactRepository('/srv/backups'), '/srv/backups');
  });

  test('argv: the repository as one --repo= word, never a shell string, no password anywhere', () => {
    assert.deepEqual(backupArgv('/r', { tags: ['ward-volume=vol_1', 'consistency=live'], host: 'vol_1' }), [
      'restic', '--repo=/r', '--json', '--quiet', '--no-cache', 'backup', '--host=vol_1', '--tag=ward-volume=vol_1', '--tag=consistency=live', '.',
    ]);
    assert.deepEqual(forgetArgv('/r', 'vol_1', { daily: 2, weekly: 0, monthly: 1, yearly: 0 }, { cacheDir: '/c' }), [
      'restic', '--repo=/r', '--json', '--quiet', '--cache-dir=/c', 'forget', '--tag=ward-volume=vol_1', '--group-by=', '--keep-daily', '2', '--keep-monthly', '1',
    ]);
  });

  test('a backup is a success only with exit 0 and a summary naming a snapshot', () => {
    const summary = '{"message_type":"summary","snapshot_id":"82987b44","files_new":1,"total_bytes_processed":6}';
    assert.equal(judgeBackup({ code: 0, signal: null, lines: [summary], stderr: '' }).summary.snapshot_id, '82987b44');
    const fails = (r: Parameters<typeof judgeBackup>[0], kind: string) =>
      assert.throws(() => judgeBackup(r), (e: unknown) => e instanceof ResticError && e.kind === kind);
    fails({ code: 0, signal: null, lines: ['{"message_type":"status"}'], stderr: '' }, 'failed');
    fails({ code: 1, signal: null, lines: [summary], stderr: 'Fatal: unable to save snapshot' }, 'failed');
    fails({ code: null, signal: 'SIGKILL', lines: [], stderr: '' }, 'killed');
    fails({ code: 1, signal: null, lines: [], stderr: 'Fatal: wrong password or no key found' }, 'wrong_password');
    fails({ code: 3, signal: null, lines: ['{"message_type":"error","item":"/x","error":{"message":"permission denied"}}', summary], stderr: '' }, 'incomplete');
  });
});
