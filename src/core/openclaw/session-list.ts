/**
 * `sessions.list`, `sessions.resolve` and `sessions.preview` over plain views of Warden sessions
 * (reference/openclaw-gateway-v4.md §4.5–§4.7). The caller (the gateway handler) reads sessions,
 * usage and transcript heads/tails from the store and passes {@link SessionView}s; everything
 * here is pure and deterministic (time is a parameter, ties break on the key).
 *
 * Selection order of `sessions.list`: inclusion (global/unknown, agent, configured agents,
 * subagents, cron) → filters (label, spawnedBy, archived, pinned, group, search, activity) →
 * sort (newest first) → `totalCount` → page (`offset`, `limit`). Paging invariants the OpenClaw
 * CLI checks (§4.5): `sessions` is an array, and while `hasMore` is true `nextOffset > offset`.
 * Keys are expected canonical (`agent:<id>:<rest>`, `global`, `unknown`); alias normalisation
 * (`main`, bare legacy keys) happens before these functions are called.
 */
import { WardenError } from '../errors.ts';
import type {
  OpenClawEntry,
  SessionsListParams,
  SessionsPreviewParams,
  SessionsResolveParams,
} from './session-entry.ts';
import { isSubagentKey } from './session-entry.ts';

export type SessionKind = 'direct' | 'group' | 'global' | 'unknown';
export type SessionRunStatus = 'queued' | 'running' | 'done' | 'failed' | 'killed' | 'timeout';

export interface SessionUsageView {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens: number;
  /** Tokens in the current context window, or null when unknown. */
  readonly contextTokens: number | null;
  /** False when the totals may lag (a run is still reporting usage). */
  readonly totalTokensFresh: boolean;
  readonly estimatedCostUsd: number;
}

export interface SessionMessageView {
  readonly role: string;
  readonly text: string;
  /** ms since the epoch. */
  readonly ts: number;
}

/** One Warden session as `sessions.list` and `sessions.resolve` see it. */
export interface SessionView {
  readonly key: string;
  readonly kind: SessionKind;
  /** ms since the epoch. */
  readonly updatedAt: number;
  readonly createdAt: number;
  readonly entry: OpenClawEntry;
  readonly usage: SessionUsageView;
  /** The newest user or assistant message (for `includeLastMessage` and activity sorting). */
  readonly lastMessage?: SessionMessageView;
  /** The first user message (for `includeDerivedTitles` and `search`). */
  readonly firstUserMessage?: string;
  readonly status?: SessionRunStatus;
  /** The last real user/channel interaction, ms (for `sortBy: "lastInteractionAt"`). */
  readonly lastInteractionAt?: number;
}

export interface SessionDefaults {
  readonly modelProvider: string | null;
  readonly model: string | null;
  readonly contextTokens: number | null;
}

export interface ListContext {
  /** Reported as `path` (OpenClaw's store path); @default 'warden:sessions' */
  readonly path?: string;
  /** @default all null */
  readonly defaults?: SessionDefaults;
  /** For `configuredAgentsOnly`: the agents in Warden's config. Ignored when absent. */
  readonly configuredAgentIds?: readonly string[];
}

/** A `sessions.list` row: fields without a value are omitted, never null. */
export interface SessionRow {
  readonly key: string;
  readonly kind: SessionKind;
  readonly updatedAt: number;
  readonly sessionId: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens: number;
  readonly totalTokensFresh: boolean;
  readonly [field: string]: unknown;
}

export interface SessionsListResult {
  readonly ts: number;
  readonly path: string;
  readonly count: number;
  readonly totalCount: number;
  readonly limitApplied: number;
  readonly offset: number;
  /** The offset of the next page (> offset) while `hasMore`, else null. */
  readonly nextOffset: number | null;
  readonly hasMore: boolean;
  readonly defaults: SessionDefaults;
  readonly sessions: SessionRow[];
}

/** Titles derived from the first user message are at most this long (OpenClaw's). */
export const DERIVED_TITLE_MAX_LENGTH = 60;
/** `lastMessagePreview` is at most this long. */
export const LAST_MESSAGE_PREVIEW_MAX_LENGTH = 120;
/** `sessions.resolve` lists at most this many candidates when a selector is ambiguous. */
export const RESOLVE_MAX_CANDIDATES = 10;

const DEFAULT_PATH = 'warden:sessions';
const NO_DEFAULTS: SessionDefaults = { modelProvider: null, model: null, contextTokens: null };

/** The agent id of an `agent:<id>:<rest>` key (lower-cased), else undefined. */
export function agentIdOfKey(key: string): string | undefined {
  const m = /^agent:([^:]+):(.+)$/i.exec(key.trim());
  if (m === null || m[2]?.startsWith(':')) return undefined;
  return m[1]?.toLowerCase();
}

function agentOf(view: SessionView): string | undefined {
  return agentIdOfKey(view.key) ?? view.entry.agentId?.toLowerCase();
}

/** True for cron keys (`cron:<job>`, `agent:<id>:cron:<job>[:run:<run>]`). */
export function isCronKey(key: string): boolean {
  const k = key.trim().toLowerCase();
  return k.startsWith('cron:') || /^agent:[^:]+:cron:/.test(k);
}

function collapse(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Shortens `text` (whitespace collapsed) to at most `max` characters, ellipsis included,
 * cutting at the last word boundary when it keeps more than 60% of the text.
 */
export function truncateAtWord(text: string, max: number): string {
  const t = collapse(text);
  if (t.length <= max) return t;
  const cut = t.slice(0, max - 1);
  // The cut already ends at a word boundary when the next character is a space.
  if (t[max - 1] === ' ') return `${cut}…`;
  const space = cut.lastIndexOf(' ');
  return `${space > max * 0.6 ? cut.slice(0, space) : cut}…`;
}

/**
 * The `derivedTitle` of a row: the first user message (≤ 60 characters, cut at a word
 * boundary), else the display name or label, else `<sessionId prefix> (<date>)`.
 */
export function deriveSessionTitle(view: SessionView): string {
  const first = view.firstUserMessage === undefined ? '' : collapse(view.firstUserMessage);
  if (first !== '') return truncateAtWord(first, DERIVED_TITLE_MAX_LENGTH);
  const named = view.entry.displayName ?? view.entry.label;
  if (named !== undefined && named.trim() !== '') return named.trim();
  const date = new Date(view.updatedAt).toISOString().slice(0, 10);
  return `${view.entry.sessionId.slice(0, 8)} (${date})`;
}

function activityAt(view: SessionView): number {
  return Math.max(view.updatedAt, view.lastMessage?.ts ?? 0, view.lastInteractionAt ?? 0);
}

function sortAt(view: SessionView, sortBy: SessionsListParams['sortBy']): number {
  switch (sortBy) {
    case 'updatedAt':
      return view.updatedAt;
    case 'lastInteractionAt':
      return view.lastInteractionAt ?? view.lastMessage?.ts ?? view.updatedAt;
    case 'activity':
      return activityAt(view);
    default: {
      const never: never = sortBy;
      return never;
    }
  }
}

function byNewest(at: (v: SessionView) => number) {
  return (a: SessionView, b: SessionView): number =>
    at(b) - at(a) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** True when `view` passes the inclusion rules and filters of `params` (not paging). */
function selected(
  view: SessionView,
  params: SessionsListParams,
  now: number,
  configured: ReadonlySet<string> | null,
): boolean {
  const { entry } = view;
  if (view.kind === 'global' && !params.includeGlobal) return false;
  if (view.kind === 'unknown' && !params.includeUnknown) return false;
  const agent = agentOf(view);
  if (params.agentId !== undefined) {
    if (view.kind === 'global' || view.kind === 'unknown') return false;
    if (agent !== params.agentId.toLowerCase()) return false;
  }
  if (params.configuredAgentsOnly && configured !== null && agent !== undefined) {
    if (!configured.has(agent)) return false;
  }
  if (params.excludeSubagents && (isSubagentKey(view.key) || entry.spawnedBy !== undefined))
    return false;
  if (params.excludeCron && isCronKey(view.key)) return false;
  if (params.label !== undefined && entry.label !== params.label) return false;
  if (params.spawnedBy !== undefined && entry.spawnedBy !== params.spawnedBy) return false;
  const archived = entry.archived === true;
  if (params.archived !== 'all' && archived !== params.archived) return false;
  if (params.pinned !== undefined && (entry.pinned === true) !== params.pinned) return false;
  if (params.group !== undefined && (entry.category ?? '') !== params.group) return false;
  if (params.activeOnly && view.status !== 'queued' && view.status !== 'running') return false;
  if (params.activeMinutes !== undefined) {
    const at = params.sortBy === 'activity' ? activityAt(view) : view.updatedAt;
    if (at < now - params.activeMinutes * 60_000) return false;
  }
  if (params.search !== undefined) {
    const needle = params.search;
    const fields = [view.key, entry.label, entry.displayName, entry.sessionId];
    const hit =
      fields.some((f) => f !== undefined && f.toLowerCase().includes(needle)) ||
      deriveSessionTitle(view).toLowerCase().includes(needle);
    if (!hit) return false;
  }
  return true;
}

const ROW_ENTRY_FIELDS = [
  'label',
  'displayName',
  'channel',
  'chatType',
  'spawnedBy',
  'spawnDepth',
  'archived',
  'pinned',
  'unread',
  'model',
  'modelProvider',
  'permissionMode',
  'agentRuntime',
  'thinkingLevel',
  'fastMode',
  'verboseLevel',
  'traceLevel',
  'reasoningLevel',
  'responseUsage',
  'elevatedLevel',
  'sendPolicy',
  'groupActivation',
  'queueMode',
  'icon',
  'color',
  'category',
  'boardFace',
  'boardPresentation',
  'statusNote',
  'attention',
  'lifecycleRevision',
  // Delivery-context hints (seed: sessions.list delivery-context parity).
  'lastAccountId',
  'deliveryContext',
] as const;

function toRow(
  view: SessionView,
  params: SessionsListParams,
  defaults: SessionDefaults,
): SessionRow {
  const { entry, usage } = view;
  const row: Record<string, unknown> = {
    key: view.key,
    kind: view.kind,
    updatedAt: view.updatedAt,
    createdAt: view.createdAt,
    sessionId: entry.sessionId,
  };
  const agent = agentOf(view);
  if (agent !== undefined) row.agentId = agent;
  for (const name of ROW_ENTRY_FIELDS) {
    const value = entry[name];
    if (value !== undefined) row[name] = value;
  }
  if (row.displayName === undefined && entry.label !== undefined) row.displayName = entry.label;
  if (view.status !== undefined) row.status = view.status;
  row.inputTokens = usage.inputTokens;
  row.outputTokens = usage.outputTokens;
  row.totalTokens = usage.totalTokens;
  row.totalTokensFresh = usage.totalTokensFresh;
  const contextTokens = usage.contextTokens ?? defaults.contextTokens;
  if (contextTokens !== null) row.contextTokens = contextTokens;
  row.estimatedCostUsd = usage.estimatedCostUsd;
  if (params.includeDerivedTitles) row.derivedTitle = deriveSessionTitle(view);
  if (params.includeLastMessage && view.lastMessage !== undefined) {
    const preview = truncateAtWord(view.lastMessage.text, LAST_MESSAGE_PREVIEW_MAX_LENGTH);
    if (preview !== '') row.lastMessagePreview = preview;
  }
  return row as SessionRow;
}

/**
 * `sessions.list` (§4.5): the result envelope for parsed params. `includeGlobal` and
 * `includeUnknown` default to false (TypeScript OpenClaw; the Rust rewrite defaulted them to
 * true). Every row carries `totalTokensFresh` and, when known, the delivery-context hints
 * `lastAccountId` and `deliveryContext`.
 */
export function listSessions(
  views: readonly SessionView[],
  params: SessionsListParams,
  now: number,
  ctx: ListContext = {},
): SessionsListResult {
  const defaults = ctx.defaults ?? NO_DEFAULTS;
  const configured =
    ctx.configuredAgentIds === undefined
      ? null
      : new Set(ctx.configuredAgentIds.map((id) => id.toLowerCase()));
  const matching = views
    .filter((v) => selected(v, params, now, configured))
    .sort(byNewest((v) => sortAt(v, params.sortBy)));
  const page = matching.slice(params.offset, params.offset + params.limit);
  const end = params.offset + page.length;
  const hasMore = end < matching.length;
  return {
    ts: now,
    path: ctx.path ?? DEFAULT_PATH,
    count: page.length,
    totalCount: matching.length,
    limitApplied: params.limit,
    offset: params.offset,
    nextOffset: hasMore ? end : null,
    hasMore,
    defaults,
    sessions: page.map((v) => toRow(v, params, defaults)),
  };
}

// ---------------------------------------------------------------------------------------------
// sessions.resolve

export interface ResolveCandidate {
  readonly key: string;
  readonly sessionId: string;
  readonly updatedAt: number;
  readonly agentId?: string;
  readonly label?: string;
  readonly displayName?: string;
}

export type ResolveResult =
  | {
      readonly ok: true;
      readonly key: string;
      readonly agentId: string;
      readonly displayName?: string;
      readonly boardFace?: string;
      readonly boardPresentation?: string;
    }
  | { readonly ok: false; readonly candidates?: ResolveCandidate[] };

export interface ResolveContext {
  /** The agent reported for keys that name none (`global`, `unknown`); @default 'main' */
  readonly defaultAgentId?: string;
}

function describeSelectors(params: SessionsResolveParams): string {
  const parts: string[] = [];
  if (params.key !== undefined) parts.push(`key ${JSON.stringify(params.key)}`);
  if (params.sessionId !== undefined) parts.push(`sessionId ${JSON.stringify(params.sessionId)}`);
  if (params.shortId !== undefined) parts.push(`shortId ${JSON.stringify(params.shortId)}`);
  if (params.label !== undefined) parts.push(`label ${JSON.stringify(params.label)}`);
  if (params.spawnedBy !== undefined) parts.push(`spawnedBy ${JSON.stringify(params.spawnedBy)}`);
  if (params.agentId !== undefined) parts.push(`agentId ${JSON.stringify(params.agentId)}`);
  return parts.join(', ');
}

function resolveMatches(view: SessionView, params: SessionsResolveParams): boolean {
  const { entry } = view;
  if (params.key !== undefined) {
    if (view.key !== params.key) return false;
  } else {
    // An explicit key may name global/unknown; the other selectors skip them unless asked.
    if (view.kind === 'global' && !params.includeGlobal) return false;
    if (view.kind === 'unknown' && !params.includeUnknown) return false;
  }
  if (params.sessionId !== undefined && entry.sessionId !== params.sessionId) return false;
  if (
    params.shortId !== undefined &&
    !entry.sessionId.toLowerCase().startsWith(params.shortId.toLowerCase())
  )
    return false;
  if (params.label !== undefined && entry.label !== params.label) return false;
  if (params.spawnedBy !== undefined && entry.spawnedBy !== params.spawnedBy) return false;
  if (params.agentId !== undefined && agentOf(view) !== params.agentId.toLowerCase()) return false;
  return true;
}

/**
 * `sessions.resolve` (§4.7): finds the one session every given selector matches (key, label,
 * spawnedBy, sessionId or its prefix `shortId`, agentId). Ambiguous → `{ok:false, candidates}`
 * (at most 10, newest first); missing with `allowMissing` → `{ok:false}`; missing otherwise →
 * INVALID_PARAMS "No session found: …".
 */
export function resolveSession(
  views: readonly SessionView[],
  params: SessionsResolveParams,
  ctx: ResolveContext = {},
): ResolveResult {
  const matches = views.filter((v) => resolveMatches(v, params));
  if (matches.length === 0) {
    if (params.allowMissing) return { ok: false };
    throw new WardenError('INVALID_PARAMS', `No session found: ${describeSelectors(params)}`, {
      details: { selectors: describeSelectors(params) },
    });
  }
  if (matches.length > 1) {
    const candidates = [...matches]
      .sort(byNewest((v) => v.updatedAt))
      .slice(0, RESOLVE_MAX_CANDIDATES)
      .map((v): ResolveCandidate => {
        const agentId = agentOf(v);
        return {
          key: v.key,
          sessionId: v.entry.sessionId,
          updatedAt: v.updatedAt,
          ...(agentId === undefined ? {} : { agentId }),
          ...(v.entry.label === undefined ? {} : { label: v.entry.label }),
          ...(v.entry.displayName === undefined ? {} : { displayName: v.entry.displayName }),
        };
      });
    return { ok: false, candidates };
  }
  const [view] = matches as [SessionView];
  const { entry } = view;
  const displayName = entry.displayName ?? entry.label;
  return {
    ok: true,
    key: view.key,
    agentId: agentOf(view) ?? ctx.defaultAgentId ?? 'main',
    ...(displayName === undefined ? {} : { displayName }),
    ...(entry.boardFace === undefined ? {} : { boardFace: entry.boardFace }),
    ...(entry.boardPresentation === undefined
      ? {}
      : { boardPresentation: entry.boardPresentation }),
  };
}

// ---------------------------------------------------------------------------------------------
// sessions.preview

export interface PreviewItem {
  readonly role: 'user' | 'assistant';
  readonly text: string;
}

export interface SessionsPreviewResult {
  readonly ts: number;
  readonly previews: {
    readonly key: string;
    readonly status: 'ok' | 'empty' | 'missing';
    readonly items: PreviewItem[];
  }[];
}

/**
 * `sessions.preview` (§4.6): for each requested key, in the order asked (duplicates kept, seed:
 * requested keys preserved), the last `limit` user/assistant messages, each cut to `maxChars`.
 * `messagesOf` returns a session's messages oldest first, or undefined when it does not exist.
 */
export function sessionsPreview(
  params: SessionsPreviewParams,
  messagesOf: (key: string) => readonly SessionMessageView[] | undefined,
  now: number,
): SessionsPreviewResult {
  return {
    ts: now,
    previews: params.keys.map((key) => {
      const messages = messagesOf(key);
      if (messages === undefined) return { key, status: 'missing' as const, items: [] };
      const items = messages
        .filter((m) => (m.role === 'user' || m.role === 'assistant') && m.text.trim() !== '')
        .slice(-params.limit)
        .map((m): PreviewItem => ({
          role: m.role as PreviewItem['role'],
          text: truncateAtWord(m.text, params.maxChars),
        }));
      return { key, status: items.length === 0 ? ('empty' as const) : ('ok' as const), items };
    }),
  };
}
