export { buildApi, BODY_LIMIT, type ApiDeps } from './app.ts';
