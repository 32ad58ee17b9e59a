export * from './authorize.ts';
export * from './accounts.ts';
export { hashPassword, verifyPassword, passwordProblem, MIN_PASSWORD_LENGTH, SCRYPT_PARAMS } from './password.ts';
export { newSecret, hashSecret, secretKind, TOKEN_PREFIXES } from './tokens.ts';
