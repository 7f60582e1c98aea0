export { isDeadLocalOwner, localWorkerId } from '../queue/index.ts';
export { type CallApprovalRequest, CallApprovals, isCallApproval } from './approvals.ts';
export { Bus, type BusMessage, type Subscription } from './bus.ts';
export {
  DEFAULT_EXTERNAL_LEASE_MS,
  type ExternalReport,
  ExternalSteps,
  type ExternalTake,
} from './external-steps.ts';
export { Kernel, type KernelOptions, type SystemStatus } from './kernel.ts';
export { type LedgerVerification, type SessionVerification, verifyLedger } from './ledger.ts';
export {
  DEFAULT_KERNEL_LIMITS,
  type KernelLimits,
  type StartRunInput,
  type StepContext,
  type StepResult,
  type StepTaker,
} from './orchestrator.ts';
export {
  type CreatePcbInput,
  type PcbActor,
  pcbMetaOf,
  type PcbQuotaCheck,
  ProcessTable,
} from './process-table.ts';
export {
  DEFAULT_RATE_LIMITS,
  type RateDecision,
  RateLimiter,
  type RateLimits,
} from './rate-limiter.ts';
export { type ModelCallUsage } from './resources.ts';
export { DEFAULT_AGING_MS, sortKey } from './scheduler.ts';
export { type Health, type ServiceInfo, ServiceRegistry } from './service-registry.ts';
