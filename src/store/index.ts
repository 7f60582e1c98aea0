export {
  type CopyProgress,
  type CopyReport,
  copySqliteToPostgres,
  type CopyToPostgresOptions,
  type TableCount,
} from './migrate-copy/copy.ts';
export { openStore, type PostgresTarget, type StoreTarget } from './open-store.ts';
export { storeParam } from './params.ts';
export { isPostgresUrl, parsePgTarget, type PgTarget, redactUrl } from './postgres/connection.ts';
export {
  openPostgresStore,
  PostgresStore,
  type PostgresStoreOptions,
} from './postgres/pg-store.ts';
export {
  AUDIT_APPEND_MAX,
  KV_VALUE_MAX_BYTES,
  SECURITY_RECORD_MAX_BYTES,
} from './security-rules.ts';
export { SessionDirectory } from './session-directory.ts';
export {
  checkSqliteFile,
  copySqliteDatabase,
  SQLITE_SCHEMA_VERSION,
  type SqliteFileCheck,
} from './sqlite/backup.ts';
export type { StoreIntent } from './sqlite/read-only-open.ts';
export { openSqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.ts';
export { type WriteAccessProblem, writeAccessProblem } from './sqlite/write-access.ts';
export type {
  AttemptOutcome,
  AttemptRecord,
  AuditQuery,
  AuditVerification,
  ClaimedTask,
  ClaimRequest,
  CommitListener,
  DeleteSessionCounts,
  DeleteSessionInput,
  Durability,
  EffectRecord,
  EffectStatus,
  EffectTransitionTarget,
  EventQuery,
  EventRecord,
  GrantFilter,
  InterruptFilter,
  InterruptRecord,
  KvEntry,
  KvListOptions,
  KvValue,
  LaneRecord,
  NewAuditRecord,
  NewEvent,
  NewGrant,
  NewSession,
  PolicyVersionFilter,
  ProcessFilter,
  ProcessRecord,
  PruneInput,
  PruneResult,
  QuarantineFilter,
  RetentionPolicy,
  ScheduleDefer,
  ScheduleFire,
  ScheduleRecord,
  ServiceRecord,
  SessionRecord,
  SessionRunStamp,
  SettleOutcome,
  Store,
  StoreHealth,
  StoreLocation,
  StoreOp,
  StoreSnapshot,
  SubmitRequest,
  SubmitResult,
  TaskError,
  TaskFilter,
  TaskOptionsRecord,
  TaskRecord,
  TaskSettle,
  TokenRecord,
} from './types.ts';
export { waitForChange, type WaitForChangeOptions } from './wait-for-change.ts';
