export * from './types.ts';
export * from './chain.ts';
export { canonicalJson } from './canonical.ts';
export { AuditService, SERVER_CHAIN, chainOf, verifyStore } from './service.ts';
export type { AuditLogger, AuditServiceOptions, StoreVerifyResult } from './service.ts';
export { CSV_COLUMNS, EXPORT_FORMAT, csvCell, describeVerify, exportAudit, verifyExport } from './export.ts';
export type { ExportFormat, ExportHeader, ExportOptions, ExportVerifyResult, VerifyExportOptions } from './export.ts';
export { AUDIT_KEY_FILE, auditKeyPath, loadOrCreateAuditKey } from './keyfile.ts';
