/**
 * Event types written to the per-session log. Names are `noun.verb`. Every state change writes
 * its event(s) in the same transaction (DESIGN.md §2.1).
 */
export const EVENT_TYPES = [
  'session.created',
  'process.created',
  'process.state_changed',
  'process.terminated',
  'process.usage',
  'stage.started',
  'stage.completed',
  'stage.failed',
  'route.taken',
  'model.delta',
  'model.called',
  'budget.exceeded',
  'budget.soft_timeout',
  'budget.granted',
  'task.queued',
  'task.claimed',
  'task.heartbeat_lost',
  'task.succeeded',
  'task.failed',
  'task.retry_scheduled',
  'task.lease_expired',
  'task.dead',
  'task.canceled',
  'task.progress',
  'task.redriven',
  'task.purged',
  'task.idempotency_key_released',
  'task.released',
  'lane.configured',
  'service.registered',
  'service.unregistered',
  'schedule.updated',
  'schedule.deleted',
  'schedule.failed',
  'interrupt.raised',
  'interrupt.resolved',
  'interrupt.expired',
  'interrupt.cancelled',
  'retention.pruned',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The reserved session for kernel-wide events and session-less tasks. */
export const SYSTEM_SESSION_KEY = 'system';
