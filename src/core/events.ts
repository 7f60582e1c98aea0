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
  'effect.started',
  'effect.completed',
  'effect.failed',
  'effect.retried',
  'effect.taken_over',
  'effect.superseded',
  'schedule.updated',
  'schedule.deleted',
  'interrupt.raised',
  'interrupt.resolved',
  'interrupt.expired',
  'interrupt.cancelled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The reserved session for kernel-wide events and session-less tasks. */
export const SYSTEM_SESSION_KEY = 'system';
