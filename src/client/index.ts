/**
 * `warden/client`: drive a running Warden daemon over ACP (docs/client.md). Imports nothing
 * but core and `ws`, so it runs in programs without a database.
 */
export { type ErrorCode, isWardenError, WardenError } from '../core/index.ts';
export { WardenClient, type WardenClientEvents } from './client.ts';
export type {
  Call,
  CallOptions,
  InterruptMethods,
  LedgerMethods,
  RunMethods,
  SessionMethods,
  SystemMethods,
  TaskMethods,
} from './methods.ts';
export { CLIENT_PROTOCOL, type ReconnectOptions, type WardenClientOptions } from './options.ts';
export {
  type RemoteJob,
  type RemoteJobHandler,
  type RemoteWorkerOptions,
  type RemoteWorkerSummary,
  runRemoteWorker,
} from './remote-worker.ts';
export { type SubscribeOptions, Subscription } from './subscription.ts';
export type {
  AcpMethod,
  AcpMethods,
  AttemptRecord,
  BackpressureNotice,
  Claim,
  ClientInfo,
  EventRecord,
  HelloResult,
  InterruptRecord,
  ParamsOf,
  ProtocolRange,
  ResultOf,
  RunRecord,
  SessionRecord,
  ShutdownNotice,
  TaskErrorRecord,
  TaskFailure,
  TaskRecord,
} from './types.ts';
