/**
 * The error catalog. Every error a user or an API client can see has a stable code here: clients and
 * scripts match on the code, never on the message. docs/errors.md documents each one (a test checks).
 * `status` is the HTTP status the API answers with.
 */
export const ERROR_CODES = {
  bad_request: { status: 400, summary: 'The request is malformed or fails validation.' },
  invalid_json: { status: 400, summary: 'The request body is not valid JSON.' },
  invalid_config: { status: 400, summary: 'A ward.toml or server configuration is invalid.' },
  invalid_name: { status: 400, summary: 'A name (app, org) is not DNS-safe or is reserved.' },
  unauthenticated: { status: 401, summary: 'No credential, or an expired, revoked or forged one.' },
  invalid_credentials: { status: 401, summary: 'The email or password is wrong.' },
  otp_required: { status: 401, summary: 'The account uses MFA: logging in needs a one-time code.' },
  invalid_otp: { status: 401, summary: 'The one-time code is wrong, expired or was used already.' },
  forbidden: { status: 403, summary: 'The credential is valid but lacks the permission for this action.' },
  mfa_required: { status: 403, summary: 'An org policy requires MFA and the account has none yet; only enrolment is allowed.' },
  invite_required: { status: 403, summary: 'This server already has accounts; signing up needs an invite code.' },
  not_found: { status: 404, summary: 'The resource does not exist, or the caller may not see it.' },
  method_not_allowed: { status: 405, summary: 'The route exists but not with this HTTP method.' },
  conflict: { status: 409, summary: 'The resource already exists or changed concurrently.' },
  name_taken: { status: 409, summary: 'The name is already used by another resource of that kind.' },
  payload_too_large: { status: 413, summary: 'The request body is larger than the server accepts.' },
  unsupported_media_type: { status: 415, summary: 'The request body is not application/json.' },
  too_many_requests: { status: 429, summary: 'Too many requests; retry after the time given.' },
  internal: { status: 500, summary: 'A bug or an unexpected failure on the server; see its log by request id.' },
  unavailable: { status: 503, summary: 'A dependency (database, runtime) is not available right now.' },
  // Images: references, registries, archives and the unpacker (src/agent/runtime/images).
  invalid_image_ref: { status: 400, summary: 'An image reference cannot be parsed.' },
  image_not_found: { status: 404, summary: 'The image (or its tag, digest or archive) does not exist.' },
  image_invalid: { status: 400, summary: 'An image is malformed, fails its digests, breaks an unpack rule or a limit.' },
  registry_auth: { status: 400, summary: 'The registry refused the credentials, or needs some and none were given.' },
  registry_tls: { status: 400, summary: 'The registry is not verifiably HTTPS and is not allowed as insecure.' },
  registry_unavailable: { status: 503, summary: 'The registry cannot be reached or failed.' },
  // Instances: the runtime on a host (src/agent/runtime).
  resources_exceed_host: { status: 400, summary: 'An instance asks for more memory or CPUs than its host has.' },
  // Edge: certificates an operator uploads (src/edge/certs).
  certificate_invalid: { status: 400, summary: 'An uploaded certificate or key does not parse, names no DNS name, has expired, or does not match its key.' },
  // Secrets: the vault and delivery to instances (src/secrets, src/services/secrets.ts).
  invalid_secret: { status: 400, summary: 'A secret name or value is invalid, or a .env text cannot be read; the message never quotes a value.' },
  delivery_refused: { status: 403, summary: 'A host asked for secrets with a delivery token that is unknown, spent, expired, or not for an instance placed on it.' },
  secrets_unreadable: { status: 500, summary: 'A stored secret or data key does not decrypt: altered, moved between apps, or the wrong master key.' },
  // Volumes (src/agent/volumes, src/services/volumes.ts).
  volume_in_use: { status: 409, summary: 'A volume cannot be destroyed while an instance (or a backup) uses it.' },
  // Backups: restic targets, runs, restores and drills (src/backups, src/services/backups.ts).
  backup_target_missing: { status: 409, summary: 'The org has no backup target (restic repository) yet.' },
  backup_failed: { status: 502, summary: 'A backup, restore or restore drill ran and failed, or the target cannot be opened; the run is recorded.' },
  restore_refused: { status: 409, summary: 'A restore into a volume that a running instance has mounted, without --force.' },
  // Errors that only the CLI or the server process raise locally (never sent by the API).
  usage: { status: 400, summary: 'A command was called with unknown or missing arguments or flags.' },
  not_logged_in: { status: 401, summary: 'The CLI has no session and no WARD_API_TOKEN.' },
  api_unreachable: { status: 503, summary: 'The CLI could not connect to the Ward API.' },
  deploy_failed: { status: 409, summary: 'The release `ward deploy` followed failed; the previous release keeps serving.' },
  database_unreachable: { status: 503, summary: 'The server could not connect to its database.' },
  data_dir: { status: 500, summary: 'The data directory cannot be created, read or written.' },
  listen_failed: { status: 500, summary: 'A listener (the edge\'s HTTP, HTTPS or a TCP service port) cannot bind its address.' },
  up_failed: { status: 500, summary: '`ward up` could not finish: its server did not start, or the example app did not answer over HTTPS in time.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface WardErrorOptions {
  /** hint says what the user can do about it; the CLI prints it as `Hint: …`. */
  hint?: string;
  /** details are machine-readable extras (field paths, limits); never secrets. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * UserError is an error the user can fix: bad input, a missing login, a name taken. The CLI prints it as
 * `Error: <message>` and `Hint: <hint>` with exit code 1 and no stack; the API answers with its code's
 * status. Anything that is not a UserError is a bug and is reported as `internal`.
 */
export class UserError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: WardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** The wire form of every API error: `{error: {code, message}}`, with hint and details when present. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown>; request_id?: string };
}

export function errorBody(e: UserError, requestId?: string): ErrorBody {
  const body: ErrorBody = { error: { code: e.code, message: e.message } };
  if (e.hint) body.error.hint = e.hint;
  if (e.details) body.error.details = e.details;
  if (requestId) body.error.request_id = requestId;
  return body;
}
