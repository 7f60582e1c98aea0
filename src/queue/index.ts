export { claimEvent, releaseSettle } from './claim-events.ts';
export { ClaimLoop, type ClaimLoopOptions, type LaneRoom } from './claim-loop.ts';
export {
  type AttemptEffects,
  EffectJournal,
  type EffectJournalOptions,
  type EffectOptions,
  type EffectOutcome,
  type EffectScope,
  type JournalEffectOptions,
} from './effects.ts';
export { HeartbeatPump, type HeartbeatPumpOptions } from './heartbeat-pump.ts';
export {
  JobQueue,
  type JobQueueOptions,
  type QueueLimits,
  type ResolvedLane,
  type ScheduleSpec,
  type SubmittedJob,
} from './job-queue.ts';
export {
  type JobContext,
  type JobHandler,
  JobWorker,
  type JobWorkerOptions,
  type JobWorkerStats,
  nonRetryable,
  retryAfter,
} from './job-worker.ts';
export {
  LeaseReaper,
  type LeaseReaperOptions,
  type ReclaimDecision,
  reclaimExpiredLeases,
  type ReclaimHook,
  type ReclaimOptions,
  registerReclaimHook,
} from './lease-reaper.ts';
export { type LaneOptions, DEFAULTS as QUEUE_DEFAULTS, type SubmitOptions } from './options.ts';
export {
  isDeadLocalOwner,
  localWorkerId,
  REMOTE_OWNER_PATTERN,
  remoteWorkerId,
} from './owner-liveness.ts';
export {
  RESERVED_CODES as REMOTE_RESERVED_CODES,
  type RemoteClaim,
  type RemoteClaimRequest,
  remoteError,
  type RemoteFailure,
  type RemoteSettled,
  RemoteWork,
  type RemoteWorkOptions,
} from './remote-work.ts';
export {
  type ResolvedRetentionOptions,
  resolveRetentionOptions,
  RETENTION_DEFAULTS,
  type RetentionOptions,
  retentionOptionsSchema,
  RetentionSweeper,
  type RetentionSweeperOptions,
  type SweepResult,
} from './retention.ts';
export { RunState } from './run-state.ts';
export {
  type FailurePolicyContext,
  type FailureSettle,
  failureSettle,
  type FailureSettleOptions,
  oversizedResult,
  successSettle,
} from './settle-builder.ts';
