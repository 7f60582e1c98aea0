/**
 * The OpenClaw view of a Warden session (reference/openclaw-gateway-v4.md §4.5–§4.11). Warden
 * stores each OpenClaw session as a Warden session; the OpenClaw-only fields live in
 * `settings.openclaw` as an {@link OpenClawEntry}. This module owns that entry: its schema, its
 * creation ({@link newOpenClawEntry}, the only place `spawnedBy`/`spawnDepth` can be set), and
 * the pure transitions of `sessions.patch` ({@link applyPatch}) and `sessions.reset`
 * ({@link rotateSessionId}), with the compare-and-set guards and the `resolved` view of their
 * results. The method params and scopes live in `session-params.ts` and are re-exported here.
 * Pure: no I/O, no clock.
 */
import { z } from 'zod';

import { WardenError } from '../errors.ts';
import {
  ATTENTION_ICONS,
  BOARD_FACES,
  BOARD_PRESENTATIONS,
  ELEVATED_LEVELS,
  EXEC_ASK_MODES,
  EXEC_HOSTS,
  EXEC_SECURITY_LEVELS,
  GROUP_ACTIVATIONS,
  OPENCLAW_LABEL_MAX_LENGTH,
  PATCH_FIELDS,
  PERMISSION_MODES,
  QUEUE_MODES,
  REASONING_LEVELS,
  RESPONSE_USAGE_LEVELS,
  SANDBOX_MODES,
  SEND_POLICIES,
  SESSION_COLORS,
  type SessionsPatchParams,
  THINKING_LEVELS,
  toolOverridesSchema,
  TRACE_LEVELS,
  VERBOSE_LEVELS,
} from './session-params.ts';

export {
  ATTENTION_ICONS,
  BOARD_FACES,
  BOARD_PRESENTATIONS,
  deleteScope,
  ELEVATED_LEVELS,
  EXEC_ASK_MODES,
  EXEC_HOSTS,
  EXEC_SECURITY_LEVELS,
  GROUP_ACTIVATIONS,
  LIST_LIMITS,
  OPENCLAW_LABEL_MAX_LENGTH,
  type OperatorWriteScope,
  PATCH_FIELDS,
  type PatchField,
  patchScope,
  PERMISSION_MODES,
  PREVIEW_LIMITS,
  QUEUE_MODES,
  REASONING_LEVELS,
  RESPONSE_USAGE_LEVELS,
  SANDBOX_MODES,
  SEND_POLICIES,
  SESSION_COLORS,
  sessionLabel,
  type SessionsCompactParams,
  sessionsCompactParams,
  type SessionsDeleteParams,
  sessionsDeleteParams,
  type SessionsListParams,
  sessionsListParams,
  type SessionsPatchParams,
  sessionsPatchParams,
  type SessionsPreviewParams,
  sessionsPreviewParams,
  type SessionsResetParams,
  sessionsResetParams,
  type SessionsResolveParams,
  sessionsResolveParams,
  THINKING_LEVELS,
  type ToolOverrides,
  TRACE_LEVELS,
  VERBOSE_LEVELS,
} from './session-params.ts';

// ---------------------------------------------------------------------------------------------
// The stored entry

const nonEmpty = (max: number) => z.string().min(1).max(max);
const storedLabel = nonEmpty(OPENCLAW_LABEL_MAX_LENGTH);

const deliveryContextSchema = z.object({
  channel: z.string().optional(),
  to: z.string().optional(),
  accountId: z.string().optional(),
  threadId: z.union([z.string(), z.number()]).optional(),
});
export type DeliveryContext = z.output<typeof deliveryContextSchema>;

/**
 * `settings.openclaw` of a Warden session. Every field but `sessionId` is optional: absent means
 * "not overridden" (the default applies, see {@link resolvedView}). Values are canonical (the
 * patch schema normalises aliases before they get here). Unknown stored keys are dropped on read.
 */
export const openClawEntrySchema = z.object({
  /** OpenClaw's transcript id; rotated by `sessions.reset`. */
  sessionId: nonEmpty(256),
  label: storedLabel.optional(),
  autoLabel: storedLabel.optional(),
  icon: nonEmpty(4_096).optional(),
  color: z.enum(SESSION_COLORS).optional(),
  category: storedLabel.optional(),
  boardFace: z.enum(BOARD_FACES).optional(),
  boardPresentation: z.enum(BOARD_PRESENTATIONS).optional(),
  statusNote: z.string().max(120).optional(),
  attention: z.enum(ATTENTION_ICONS).optional(),
  pinned: z.boolean().optional(),
  archived: z.boolean().optional(),
  unread: z.boolean().optional(),
  ttlMinutes: z.number().int().min(1).max(120).optional(),
  model: nonEmpty(256).optional(),
  modelProvider: nonEmpty(256).optional(),
  agentRuntime: nonEmpty(256).optional(),
  contextWindow: nonEmpty(64).optional(),
  thinkingLevel: z.enum(THINKING_LEVELS).optional(),
  fastMode: z.union([z.boolean(), z.literal('auto')]).optional(),
  verboseLevel: z.enum(VERBOSE_LEVELS).optional(),
  traceLevel: z.enum(TRACE_LEVELS).optional(),
  reasoningLevel: z.enum(REASONING_LEVELS).optional(),
  responseUsage: z.enum(RESPONSE_USAGE_LEVELS).optional(),
  elevatedLevel: z.enum(ELEVATED_LEVELS).optional(),
  execHost: z.enum(EXEC_HOSTS).optional(),
  execSecurity: z.enum(EXEC_SECURITY_LEVELS).optional(),
  execAsk: z.enum(EXEC_ASK_MODES).optional(),
  execNode: nonEmpty(256).optional(),
  permissionMode: z.enum(PERMISSION_MODES).optional(),
  sandboxMode: z.enum(SANDBOX_MODES).optional(),
  toolOverrides: toolOverridesSchema.optional(),
  sendPolicy: z.enum(SEND_POLICIES).optional(),
  groupActivation: z.enum(GROUP_ACTIVATIONS).optional(),
  queueMode: z.enum(QUEUE_MODES).optional(),
  /** Parent session key of a subagent; immutable (set by {@link newOpenClawEntry} only). */
  spawnedBy: nonEmpty(512).optional(),
  /** Nesting depth of a subagent; immutable like `spawnedBy`. */
  spawnDepth: z.number().int().min(0).optional(),
  channel: nonEmpty(128).optional(),
  chatType: nonEmpty(64).optional(),
  agentId: nonEmpty(64).optional(),
  displayName: nonEmpty(512).optional(),
  /** Delivery hint reported on `sessions.list` rows (seed: delivery-context parity). */
  lastAccountId: nonEmpty(256).optional(),
  deliveryContext: deliveryContextSchema.optional(),
  /**
   * A decimal counter as a string (OpenClaw's `expectedLifecycleRevision` is a string), bumped
   * by every patch and reset; compare-and-set guards compare against it.
   */
  lifecycleRevision: z.string().regex(/^\d+$/).optional(),
});
export type OpenClawEntry = z.output<typeof openClawEntrySchema>;

/**
 * Reads `settings.openclaw` of a Warden session: undefined when the session has none (it was
 * not created through the gateway). INVALID_STATE when it is present but malformed.
 */
export function readOpenClawEntry(
  settings: Readonly<Record<string, unknown>>,
): OpenClawEntry | undefined {
  const raw = settings.openclaw;
  if (raw === undefined) return undefined;
  const parsed = openClawEntrySchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
  throw new WardenError(
    'INVALID_STATE',
    `session settings.openclaw is not a valid OpenClaw entry (${where}${issue?.message ?? 'invalid'}); patch the field or reset the session`,
    { details: { issues: parsed.error.issues.map((i) => i.message) } },
  );
}

/** True for a subagent session key (`agent:<id>:subagent:<uuid>`, nestable). */
export function isSubagentKey(key: string): boolean {
  const k = key.trim().toLowerCase();
  return k.startsWith('subagent:') || k.includes(':subagent:');
}

export interface NewEntryInit {
  readonly key: string;
  readonly sessionId: string;
  /** Parent session key: only for subagent keys. */
  readonly spawnedBy?: string;
  /** Nesting depth (integer ≥ 0): only for subagent keys. */
  readonly spawnDepth?: number;
  readonly agentId?: string;
  readonly channel?: string;
  readonly chatType?: string;
  readonly displayName?: string;
  readonly label?: string;
}

/**
 * The entry of a session created through the gateway. `spawnedBy`/`spawnDepth` can be set here
 * and only here, and only for a subagent key: INVALID_PARAMS otherwise.
 */
export function newOpenClawEntry(init: NewEntryInit): OpenClawEntry {
  if ((init.spawnedBy !== undefined || init.spawnDepth !== undefined) && !isSubagentKey(init.key))
    throw new WardenError(
      'INVALID_PARAMS',
      `spawnedBy/spawnDepth are only supported for subagent sessions (agent:<id>:subagent:<id>), not '${init.key}'`,
      { details: { key: init.key } },
    );
  const { key: _key, ...fields } = init;
  const parsed = openClawEntrySchema.safeParse({ ...fields, lifecycleRevision: '0' });
  if (!parsed.success)
    throw new WardenError(
      'INVALID_PARAMS',
      `new OpenClaw entry: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------
// Transitions

function nextRevision(entry: OpenClawEntry): string {
  const current = entry.lifecycleRevision === undefined ? 0 : Number(entry.lifecycleRevision);
  return String(current + 1);
}

export interface LifecycleGuards {
  readonly expectedSessionId?: string | null | undefined;
  readonly expectedLifecycleRevision?: string | null | undefined;
}

/**
 * The compare-and-set guards of patch, reset and delete: CONFLICT ("Session <key> changed
 * before <action>. Retry.") when the session was reset or changed since the caller read it.
 */
export function checkLifecycleGuards(
  entry: OpenClawEntry,
  guards: LifecycleGuards,
  key: string,
  action: string,
): void {
  const { expectedSessionId: sid, expectedLifecycleRevision: rev } = guards;
  const sidMismatch = typeof sid === 'string' && sid !== entry.sessionId;
  const revMismatch = typeof rev === 'string' && rev !== (entry.lifecycleRevision ?? '0');
  if (sidMismatch || revMismatch)
    throw new WardenError('CONFLICT', `Session ${key} changed before ${action}. Retry.`, {
      details: {
        key,
        sessionId: entry.sessionId,
        lifecycleRevision: entry.lifecycleRevision ?? '0',
        ...(sidMismatch ? { expectedSessionId: sid } : {}),
        ...(revMismatch ? { expectedLifecycleRevision: rev } : {}),
      },
    });
}

export interface ApplyPatchContext {
  /** The canonical key of the session being patched. */
  readonly key: string;
  /** The key of the session that holds `label`, or null; consulted only when a label is set. */
  readonly labelTakenBy?: (label: string) => string | null;
}

/**
 * Applies parsed `sessions.patch` params to an entry and returns the new entry (the input is not
 * changed). Checks the lifecycle guards first (CONFLICT); a label held by another session is
 * INVALID_PARAMS "label already in use by <key>". `null` removes a field; `model` given as
 * `provider/model` also sets `modelProvider`; clearing `statusNote` clears `attention`.
 * `lifecycleRevision` is bumped on every patch.
 */
export function applyPatch(
  entry: OpenClawEntry,
  patch: SessionsPatchParams,
  ctx: ApplyPatchContext,
): OpenClawEntry {
  checkLifecycleGuards(entry, patch, ctx.key, 'patch');
  const next: Record<string, unknown> = { ...entry };
  for (const name of PATCH_FIELDS) {
    const value = patch[name];
    if (value === undefined) continue;
    if (value === null) {
      delete next[name];
      if (name === 'model') delete next.modelProvider;
      if (name === 'statusNote') delete next.attention;
      continue;
    }
    if (name === 'label' && typeof value === 'string') {
      const owner = ctx.labelTakenBy?.(value) ?? null;
      if (owner !== null && owner !== ctx.key)
        throw new WardenError(
          'INVALID_PARAMS',
          `invalid sessions.patch params: label: label already in use by ${owner}; labels are unique, pick another or clear it there first`,
          { details: { label: value, key: owner } },
        );
    }
    if (name === 'model' && typeof value === 'string') {
      const slash = value.indexOf('/');
      if (slash > 0 && slash < value.length - 1) {
        next.modelProvider = value.slice(0, slash);
        next.model = value.slice(slash + 1);
      } else {
        delete next.modelProvider;
        next.model = value;
      }
      continue;
    }
    next[name] = value;
  }
  next.lifecycleRevision = nextRevision(entry);
  return openClawEntrySchema.parse(next);
}

/**
 * `sessions.reset`: a new transcript under the same key. The session id rotates, the lifecycle
 * revision is bumped, and the status note and attention of the old conversation are dropped;
 * every override (model, levels, exec policy, label…) is kept. INVALID_PARAMS when `newId` is
 * empty or equal to the current id.
 */
export function rotateSessionId(entry: OpenClawEntry, newId: string): OpenClawEntry {
  if (typeof newId !== 'string' || newId.trim() === '' || newId === entry.sessionId)
    throw new WardenError(
      'INVALID_PARAMS',
      'rotateSessionId: newId: expected a fresh session id different from the current one',
      { details: { sessionId: entry.sessionId } },
    );
  const { statusNote: _note, attention: _attention, ...kept } = entry;
  return { ...kept, sessionId: newId, lifecycleRevision: nextRevision(entry) };
}

// ---------------------------------------------------------------------------------------------
// The `resolved` object of patch and reset results

/** Gateway defaults the entry's overrides fall back to (from Warden's config). */
export interface ResolvedDefaults {
  readonly modelProvider: string | null;
  readonly model: string | null;
  readonly agentRuntime?: string | null;
  readonly contextWindow?: string;
  readonly thinkingLevel?: OpenClawEntry['thinkingLevel'];
  readonly fastMode?: OpenClawEntry['fastMode'];
  readonly verboseLevel?: OpenClawEntry['verboseLevel'];
  readonly reasoningLevel?: OpenClawEntry['reasoningLevel'];
  readonly responseUsage?: OpenClawEntry['responseUsage'];
  readonly elevatedLevel?: OpenClawEntry['elevatedLevel'];
  readonly execHost?: OpenClawEntry['execHost'];
  readonly execSecurity?: OpenClawEntry['execSecurity'];
  readonly execAsk?: OpenClawEntry['execAsk'];
  readonly permissionMode?: OpenClawEntry['permissionMode'];
  readonly sendPolicy?: OpenClawEntry['sendPolicy'];
  readonly groupActivation?: OpenClawEntry['groupActivation'];
  readonly queueMode?: OpenClawEntry['queueMode'];
}

const RESOLVED_KNOBS = [
  'contextWindow',
  'thinkingLevel',
  'fastMode',
  'verboseLevel',
  'reasoningLevel',
  'responseUsage',
  'elevatedLevel',
  'execHost',
  'execSecurity',
  'execAsk',
  'permissionMode',
  'sendPolicy',
  'groupActivation',
  'queueMode',
] as const;

export interface ResolvedView {
  readonly modelProvider: string | null;
  readonly model: string | null;
  readonly agentRuntime: string | null;
  /** True when the session pins its runtime (`agentRuntime` set on the entry). */
  readonly runtimeSelectionLocked: boolean;
  readonly [knob: string]: unknown;
}

/**
 * The effective settings of a session: each override of the entry, else the default. Knobs
 * with neither are omitted (OpenClaw clients expect absent, not null, for optional fields).
 */
export function resolvedView(entry: OpenClawEntry, defaults: ResolvedDefaults): ResolvedView {
  const ownModel = entry.model !== undefined;
  const view: Record<string, unknown> = {
    modelProvider: ownModel
      ? (entry.modelProvider ?? defaults.modelProvider)
      : defaults.modelProvider,
    model: ownModel ? entry.model : defaults.model,
    agentRuntime: entry.agentRuntime ?? defaults.agentRuntime ?? null,
    runtimeSelectionLocked: entry.agentRuntime !== undefined,
  };
  for (const knob of RESOLVED_KNOBS) {
    const value = entry[knob] ?? defaults[knob];
    if (value !== undefined) view[knob] = value;
  }
  if (entry.sandboxMode !== undefined) view.sandboxMode = entry.sandboxMode;
  return view as ResolvedView;
}
