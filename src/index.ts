/**
 * Warden's public TypeScript API. Everything importable from `warden` is listed here by name;
 * anything else is internal.
 */
export {
  buildWorkflow,
  type Clock,
  DEFAULT_QUOTA,
  ERROR_CATALOGUE,
  type ErrorCode,
  type InterruptKind,
  type InterruptResponse,
  isWardenError,
  type LoadedWorkflow,
  ManualClock,
  parseWorkflowText,
  type ProcessState,
  type Quota,
  type RoutingContext,
  type RoutingFunction,
  systemClock,
  type TerminalReason,
  type Usage,
  WardenError,
  type Workflow,
  type WorkflowInput,
} from './core/index.ts';
export {
  Kernel,
  type KernelOptions,
  type LedgerVerification,
  type StartRunInput,
  type StepResult,
  type SystemStatus,
  verifyLedger,
} from './kernel/index.ts';
export {
  EffectJournal,
  type JobContext,
  type JobHandler,
  JobQueue,
  type JobQueueOptions,
  JobWorker,
  type JobWorkerOptions,
  nonRetryable,
  retryAfter,
  type SubmitOptions,
} from './queue/index.ts';
export {
  type Agent,
  type AgentContext,
  AgentRegistry,
  type ChatMessage,
  type ModelProvider,
  ModelRegistry,
  OpenAiProvider,
  ScriptedProvider,
  Worker,
  type WorkerOptions,
} from './runtime/index.ts';
export {
  type Durability,
  type EventRecord,
  type InterruptRecord,
  openPostgresStore,
  openSqliteStore,
  type PostgresStoreOptions,
  type ProcessRecord,
  type SqliteStoreOptions,
  type Store,
  type TaskRecord,
} from './store/index.ts';
