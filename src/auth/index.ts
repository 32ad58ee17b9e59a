export * from './authorize.ts';
export * from './accounts.ts';
export { MfaService, RECOVERY_CODE_COUNT, newRecoveryCode, normalizeRecoveryCode, type Enrolment, type MfaStatus, type SecondFactorUse } from './mfa.ts';
export { TokenService, TOKEN_TTL, type TokenView, type CreateTokenInput } from './api-tokens.ts';
export { MemberService, PolicyService, SESSION_IDLE_BOUNDS, defaultPolicy, resolveOrg, type MemberView, type PolicyInput } from './members.ts';
export { LoginGuard, LOGIN_THROTTLE, accountKey, delayAfter, type ThrottleRule } from './throttle.ts';
export { hashPassword, verifyPassword, passwordProblem, MIN_PASSWORD_LENGTH, SCRYPT_PARAMS } from './password.ts';
export { newSecret, hashSecret, secretKind, TOKEN_PREFIXES } from './tokens.ts';
export { totpCode, otpauthUri, TOTP_STEP_S } from './totp.ts';
