/**
 * OpenClaw session keys (Gateway v4 reference §6.1), pure: normalisation, parsing into a closed
 * union, and canonicalisation of request aliases.
 *
 * Grammar, after trimming and case normalisation:
 *
 *     key      := "global" | "unknown" | "agent:" agentId ":" rest | rest     (a bare request key)
 *     rest     := mainKey [suffix]
 *               | [ch ":" [account ":"]] ("direct" | "dm") ":" peer [suffix]
 *               | ch ":" [account ":"] ("group" | "channel" | "room") ":" id [suffix]
 *               | ch ":slash:" userId
 *               | "cron:" job [":run:" run] | "hook:" id | "acp:" id | "node-" id
 *               | "subagent:" id (":subagent:" id)*
 *               | ("dashboard" | "subagent" | "internal-session-effects") ":incognito-" id
 *               | anything else (a legacy key, kept as an opaque string)
 *     suffix   := ":thread:" tid | ":topic:" n      (at most one of each)
 *
 * Normalisation lowercases the whole key except two opaque, case-sensitive ids that OpenClaw
 * enrolled by channel: a Signal group id (`signal:group:<segment>`, anywhere in the key) and a
 * Matrix room id (everything after `[agent:<id>:]matrix:(channel|group|room):`, except the
 * structural `:thread:` marker). Lowercasing those would fork one conversation into two sessions.
 *
 * A key is agent-scoped only when the agent id and the rest are both non-empty and the rest does
 * not start with `:`. Any other `agent:`-prefixed key is `malformed_agent`; the reference says
 * `agent` rejects it, and {@link canonicalSessionKey} throws for it. Two deliberate differences
 * from OpenClaw's TypeScript parser, both stricter:
 * - TS splits on `:` and drops empty parts, so it accepts `agent:x::y`; the reference (and Warden)
 *   do not.
 * - the agent id in a scoped key must itself be a valid agent id (see {@link normalizeAgentId});
 *   TS accepts any id there and normalises it later, so one key could name one agent and run as
 *   another. Keys OpenClaw builds always carry a normalised id, so real clients are unaffected.
 *
 * Bare keys (no `agent:` head) are request aliases: `""` and `"main"` mean the main session and
 * any other bare key `x` means `agent:<agentId>:x`. A bare key starting with `:` has no valid
 * canonical form (`agent:<id>::x` is malformed), so it is classed `malformed_agent` as well.
 * The Rust rewrite's parser (`rust-agent/src/session_key.rs`) also uses `dm` for `direct` and
 * knows `node-<id>` keys; both are accepted here and `dm` is canonicalised to `direct`.
 */
import { WardenError } from '../errors.ts';

/** The agent a bare request key belongs to when the caller names none. */
export const DEFAULT_AGENT_ID = 'main';
/** The rest of the main session's key, `agent:<agentId>:<mainKey>`. */
export const DEFAULT_MAIN_KEY = 'main';

/** Valid agent ids, after lowercasing (the reference's regex is case-insensitive). */
export const AGENT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const AGENT_ID_MAX_CHARS = 64;

/** Where an incognito session lives (`agent:<id>:<surface>:incognito-<x>`). */
export const INCOGNITO_SURFACES = ['dashboard', 'subagent', 'internal-session-effects'] as const;
export type IncognitoSurface = (typeof INCOGNITO_SURFACES)[number];

/** The markers that make a key a group-like conversation. */
export const GROUP_KINDS = ['group', 'channel', 'room'] as const;
export type GroupKind = (typeof GROUP_KINDS)[number];

/** Every `kind` {@link parseSessionKey} returns. */
export const SESSION_KEY_KINDS = [
  'main',
  'direct',
  ...GROUP_KINDS,
  'cron',
  'hook',
  'subagent',
  'acp',
  'slash',
  'incognito',
  'node',
  'global',
  'unknown',
  'legacy',
  'malformed_agent',
] as const;
export type SessionKeyKind = (typeof SESSION_KEY_KINDS)[number];

interface SessionKeyBase {
  /** The input after trimming and case normalisation. */
  readonly normalized: string;
  /**
   * The canonical key. A bare key is placed under {@link DEFAULT_AGENT_ID}; use
   * {@link canonicalSessionKey} to place it under another agent. For `malformed_agent` there is
   * no canonical form and this is the normalised input.
   */
  readonly canonical: string;
  /** True when the key carried an `agent:<id>:` head. */
  readonly scoped: boolean;
  /** The agent id from the `agent:<id>:` head; absent for bare keys and sentinels. */
  readonly agentId?: string;
}

/** `:thread:<tid>` (Slack, Discord, Matrix threads) and `:topic:<n>` (Telegram forum topics). */
export interface ThreadSuffix {
  readonly thread?: string;
  readonly topic?: string;
}

export interface MainSessionKey extends SessionKeyBase, ThreadSuffix {
  readonly kind: 'main';
  readonly mainKey: string;
}

export interface DirectSessionKey extends SessionKeyBase, ThreadSuffix {
  readonly kind: 'direct';
  readonly peerId: string;
  /** Present for the per-channel-peer and per-account-channel-peer DM scopes. */
  readonly channel?: string;
  readonly accountId?: string;
}

export interface GroupSessionKey extends SessionKeyBase, ThreadSuffix {
  readonly kind: GroupKind;
  readonly channel: string;
  readonly accountId?: string;
  /** The group, channel or room id; may contain `:` (Matrix room ids do). */
  readonly groupId: string;
}

export interface CronSessionKey extends SessionKeyBase {
  readonly kind: 'cron';
  readonly jobId: string;
  /** Present for `cron:<job>:run:<run>`; the short form `cron:<job>` has none. */
  readonly runId?: string;
}

export interface HookSessionKey extends SessionKeyBase {
  readonly kind: 'hook';
  readonly hookId: string;
}

export interface SubagentSessionKey extends SessionKeyBase {
  readonly kind: 'subagent';
  /** Outermost first: `subagent:a:subagent:b` gives `['a', 'b']`. */
  readonly subagentIds: readonly string[];
  /** Nesting depth, `subagentIds.length` (at least 1). */
  readonly depth: number;
}

export interface AcpSessionKey extends SessionKeyBase {
  readonly kind: 'acp';
  readonly acpId: string;
}

export interface SlashSessionKey extends SessionKeyBase {
  readonly kind: 'slash';
  readonly channel: string;
  readonly userId: string;
}

export interface IncognitoSessionKey extends SessionKeyBase {
  readonly kind: 'incognito';
  readonly surface: IncognitoSurface;
  readonly incognitoId: string;
}

/** `node-<id>`, known only to the Rust rewrite. */
export interface NodeSessionKey extends SessionKeyBase {
  readonly kind: 'node';
  readonly nodeId: string;
}

/** The unscoped sentinels `global` and `unknown`. */
export interface SentinelSessionKey extends SessionKeyBase {
  readonly kind: 'global' | 'unknown';
}

/** A key with no recognised structure: a bare legacy key or its `agent:<id>:<key>` form. */
export interface LegacySessionKey extends SessionKeyBase {
  readonly kind: 'legacy';
  /** The opaque part after the `agent:<id>:` head (the whole key when bare). */
  readonly key: string;
}

export interface MalformedSessionKey extends SessionKeyBase {
  readonly kind: 'malformed_agent';
  /** Why the key is not agent-scoped, for error messages. */
  readonly reason: string;
}

export type ParsedSessionKey =
  | MainSessionKey
  | DirectSessionKey
  | GroupSessionKey
  | CronSessionKey
  | HookSessionKey
  | SubagentSessionKey
  | AcpSessionKey
  | SlashSessionKey
  | IncognitoSessionKey
  | NodeSessionKey
  | SentinelSessionKey
  | LegacySessionKey
  | MalformedSessionKey;

/** The `SessionRow.kind` of `sessions.list` (reference §4.5). */
export type SessionRowKind = 'direct' | 'group' | 'global' | 'unknown';

export interface ParseSessionKeyOptions {
  /**
   * The configured main key (`session.mainKey`), so `agent:<id>:<mainKey>` parses as `main`.
   * Trimmed and lowercased; must not contain `:`.
   * @default 'main'
   */
  readonly mainKey?: string | undefined;
}

export interface CanonicalSessionKeyOptions extends ParseSessionKeyOptions {
  /**
   * The agent that bare request keys belong to; normalised with {@link normalizeAgentId}.
   * @default 'main'
   */
  readonly agentId?: string | undefined;
}

/**
 * Normalises an agent id: trimmed and lowercased; invalid characters become `-`; leading dashes
 * and underscores and trailing dashes are trimmed; cut to 64 chars; an unusable id becomes
 * `main`. The result always matches {@link AGENT_ID_PATTERN}. (OpenClaw trims only leading
 * dashes, so `_x!` would give the invalid `_x`; Warden also trims leading underscores.)
 */
export function normalizeAgentId(raw: string): string {
  const lowered = raw.trim().toLowerCase();
  if (AGENT_ID_PATTERN.test(lowered)) return lowered;
  const cleaned = lowered
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '')
    .replace(/-+$/, '')
    .slice(0, AGENT_ID_MAX_CHARS);
  return AGENT_ID_PATTERN.test(cleaned) ? cleaned : DEFAULT_AGENT_ID;
}

/**
 * Trims the key and lowercases it, except Signal group ids and Matrix room ids (and Matrix thread
 * ids), which keep their case. Idempotent.
 */
export function normalizeSessionKey(raw: string): string {
  const key = raw.trim();
  if (key === '') return '';
  const folded = key.toLowerCase();
  if (!folded.includes('signal:') && !folded.includes('matrix:')) return folded;
  const spans = preservedSpans(key).sort((a, b) => a.start - b.start);
  let out = '';
  let cursor = 0;
  for (const span of spans) {
    // A span inside one already kept (a Signal id inside a Matrix tail) is kept with it.
    if (span.start < cursor) continue;
    out += key.slice(cursor, span.start).toLowerCase();
    const kept = key.slice(span.start, span.end);
    out += span.trim ? kept.trim() : kept;
    cursor = span.end;
  }
  return out + key.slice(cursor).toLowerCase();
}

interface Span {
  readonly start: number;
  readonly end: number;
  readonly trim: boolean;
}

const SIGNAL_GROUP_RE = /(^|:)signal:group:([^:]+)/gi;
const MATRIX_SCOPED_RE = /^agent:[^:]+:matrix:(?:channel|group|room):/i;
const MATRIX_BARE_RE = /^matrix:(?:channel|group|room):/i;
const THREAD_MARKER_RE = /:thread:/gi;

function preservedSpans(key: string): Span[] {
  const spans: Span[] = [];
  for (const match of key.matchAll(SIGNAL_GROUP_RE)) {
    const segment = match[2] ?? '';
    const start = match.index + match[0].length - segment.length;
    spans.push({ start, end: start + segment.length, trim: true });
  }
  const head = MATRIX_SCOPED_RE.exec(key) ?? MATRIX_BARE_RE.exec(key);
  if (head !== null && head[0].length < key.length) {
    const tailStart = head[0].length;
    // The `:thread:` marker is structure: lowercased, so `:Thread:` cannot fork a session.
    let marker = -1;
    for (const m of key.slice(tailStart).matchAll(THREAD_MARKER_RE)) marker = tailStart + m.index;
    if (marker === -1) {
      spans.push({ start: tailStart, end: key.length, trim: false });
    } else {
      spans.push({ start: tailStart, end: marker, trim: false });
      spans.push({ start: marker + ':thread:'.length, end: key.length, trim: false });
    }
  }
  return spans;
}

function resolveMainKey(raw: string | undefined): string {
  const mainKey = (raw ?? '').trim().toLowerCase();
  if (mainKey === '') return DEFAULT_MAIN_KEY;
  if (mainKey.includes(':')) {
    throw new WardenError(
      'INVALID_PARAMS',
      `session mainKey "${clip(mainKey)}" contains ":"; use a single segment such as "main"`,
      { details: { mainKey: clip(mainKey) } },
    );
  }
  return mainKey;
}

/**
 * Parses a session key into its kind and parts (see the module comment for the grammar).
 * Never throws for any key; malformed `agent:` keys come back as `malformed_agent`.
 * @throws INVALID_PARAMS only when `opts.mainKey` contains `:`.
 */
export function parseSessionKey(raw: string, opts: ParseSessionKeyOptions = {}): ParsedSessionKey {
  return parseWith(raw, resolveMainKey(opts.mainKey), DEFAULT_AGENT_ID);
}

/**
 * The canonical key for a request key: `""` and `"main"` become `agent:<agentId>:<mainKey>`, a
 * bare key `x` becomes `agent:<agentId>:x`, `global` and `unknown` stay, an agent-scoped key is
 * normalised (`dm` becomes `direct`). Idempotent.
 * @throws INVALID_PARAMS for a `malformed_agent` key, or a `mainKey` containing `:`.
 */
export function canonicalSessionKey(raw: string, opts: CanonicalSessionKeyOptions = {}): string {
  const agentId = normalizeAgentId(opts.agentId ?? DEFAULT_AGENT_ID);
  const parsed = parseWith(raw, resolveMainKey(opts.mainKey), agentId);
  if (parsed.kind === 'malformed_agent') {
    throw new WardenError(
      'INVALID_PARAMS',
      `malformed session key "${clip(parsed.normalized)}": ${parsed.reason}; use "agent:<agentId>:<rest>" with a non-empty agent id and rest, or a bare key such as "main"`,
      { details: { key: clip(parsed.normalized), reason: parsed.reason } },
    );
  }
  return parsed.canonical;
}

/**
 * The `SessionRow.kind` of reference §4.5: group, channel and room keys are `group`; the
 * sentinels are themselves; a `malformed_agent` key is `unknown` (it never names a real
 * session); every other key is `direct`.
 */
export function sessionKind(parsed: ParsedSessionKey): SessionRowKind {
  switch (parsed.kind) {
    case 'group':
    case 'channel':
    case 'room':
      return 'group';
    case 'global':
      return 'global';
    case 'unknown':
    case 'malformed_agent':
      return 'unknown';
    case 'main':
    case 'direct':
    case 'cron':
    case 'hook':
    case 'subagent':
    case 'acp':
    case 'slash':
    case 'incognito':
    case 'node':
    case 'legacy':
      return 'direct';
    default: {
      const never: never = parsed;
      return never;
    }
  }
}

/** True for group, channel and room keys (the ones group activation, §6.3, applies to). */
export function isGroupKey(parsed: ParsedSessionKey): parsed is GroupSessionKey {
  return parsed.kind === 'group' || parsed.kind === 'channel' || parsed.kind === 'room';
}

/**
 * The conversation a group key names: `<channel>[:<account>]:<kind>:<id>` plus `:topic:<n>` and
 * `:thread:<tid>` when present; `null` for other keys. Two different groups, or two threads or
 * topics of one group, never share it, so it can key per-conversation state (activation, the
 * collect drain, reply-back). It leaves out the agent: queue lanes key on the canonical session
 * key, which already includes the agent.
 */
export function groupIsolationKey(parsed: ParsedSessionKey): string | null {
  if (!isGroupKey(parsed)) return null;
  const account = parsed.accountId === undefined ? '' : `:${parsed.accountId}`;
  const topic = parsed.topic === undefined ? '' : `:topic:${parsed.topic}`;
  const thread = parsed.thread === undefined ? '' : `:thread:${parsed.thread}`;
  return `${parsed.channel}${account}:${parsed.kind}:${parsed.groupId}${topic}${thread}`;
}

// --- parsing ---------------------------------------------------------------------------------

const INCOGNITO_RE = /^(dashboard|subagent|internal-session-effects):incognito-([^:]+)$/;

function parseWith(raw: string, mainKey: string, defaultAgentId: string): ParsedSessionKey {
  const normalized = normalizeSessionKey(raw);
  if (normalized === 'global' || normalized === 'unknown') {
    return { kind: normalized, normalized, canonical: normalized, scoped: false };
  }
  if (normalized.startsWith('agent:')) {
    const body = normalized.slice('agent:'.length);
    const colon = body.indexOf(':');
    const agentId = colon === -1 ? body : body.slice(0, colon);
    const rest = colon === -1 ? '' : body.slice(colon + 1);
    const reason =
      agentId === ''
        ? 'the agent id is empty'
        : rest === ''
          ? 'nothing follows the agent id'
          : rest.startsWith(':')
            ? 'the part after the agent id starts with ":"'
            : !AGENT_ID_PATTERN.test(agentId)
              ? `the agent id "${clip(agentId)}" is not a valid agent id`
              : null;
    if (reason !== null) return malformed(normalized, reason, true);
    return classifyRest(rest, { normalized, agentId, scoped: true, mainKey });
  }
  if (normalized.startsWith(':')) {
    return malformed(normalized, 'a bare key must not start with ":"', false);
  }
  return classifyRest(normalized, { normalized, agentId: defaultAgentId, scoped: false, mainKey });
}

function malformed(normalized: string, reason: string, scoped: boolean): MalformedSessionKey {
  return { kind: 'malformed_agent', normalized, canonical: normalized, scoped, reason };
}

interface RestContext {
  readonly normalized: string;
  /** The key's own agent id when scoped; the agent a bare key is placed under otherwise. */
  readonly agentId: string;
  readonly scoped: boolean;
  readonly mainKey: string;
}

function classifyRest(rest: string, ctx: RestContext): ParsedSessionKey {
  const base = (canonicalRest: string) => ({
    normalized: ctx.normalized,
    canonical: `agent:${ctx.agentId}:${canonicalRest}`,
    scoped: ctx.scoped,
    ...(ctx.scoped ? { agentId: ctx.agentId } : {}),
  });
  const segs = rest.split(':');
  const [s0 = '', s1 = '', s2 = '', s3 = ''] = segs;

  const incognito = INCOGNITO_RE.exec(rest);
  if (incognito !== null) {
    const surface = incognito[1] as IncognitoSurface;
    return { kind: 'incognito', ...base(rest), surface, incognitoId: incognito[2] ?? '' };
  }
  if (s0 === 'cron' && s1 !== '') {
    const runId = s2 === 'run' && s3 !== '' ? { runId: s3 } : {};
    return { kind: 'cron', ...base(rest), jobId: s1, ...runId };
  }
  if (rest.startsWith('hook:') && rest.length > 'hook:'.length) {
    return { kind: 'hook', ...base(rest), hookId: rest.slice('hook:'.length) };
  }
  if (s0 === 'subagent' && s1 !== '') {
    const ids: string[] = [];
    for (let i = 0; segs[i] === 'subagent' && (segs[i + 1] ?? '') !== ''; i += 2) {
      ids.push(segs[i + 1] ?? '');
    }
    return { kind: 'subagent', ...base(rest), subagentIds: ids, depth: ids.length };
  }
  if (rest.startsWith('acp:') && rest.length > 'acp:'.length) {
    return { kind: 'acp', ...base(rest), acpId: rest.slice('acp:'.length) };
  }
  if (rest.startsWith('node-') && rest.length > 'node-'.length) {
    return { kind: 'node', ...base(rest), nodeId: rest.slice('node-'.length) };
  }
  if (s1 === 'slash' && s0 !== '' && segs.length > 2 && segs.slice(2).join(':') !== '') {
    return { kind: 'slash', ...base(rest), channel: s0, userId: segs.slice(2).join(':') };
  }

  const { head, suffix, thread, topic } = splitThreadSuffix(rest);
  const threadFields = {
    ...(topic === undefined ? {} : { topic }),
    ...(thread === undefined ? {} : { thread }),
  };
  if (head === ctx.mainKey || (!ctx.scoped && (head === '' || head === DEFAULT_MAIN_KEY))) {
    return { kind: 'main', ...base(ctx.mainKey + suffix), mainKey: ctx.mainKey, ...threadFields };
  }
  // `telegram:group:direct:5` is group `direct:5`, not a DM: the earliest marker wins.
  const headSegs = head.split(':');
  const direct = matchMarked(headSegs, 0, (s) => s === 'direct' || s === 'dm');
  const group = matchMarked(headSegs, 1, (s) => (GROUP_KINDS as readonly string[]).includes(s));
  if (direct !== null && (group === null || direct.at < group.at)) {
    const canonicalHead = [...direct.prefix, 'direct', direct.id].join(':');
    return {
      kind: 'direct',
      ...base(canonicalHead + suffix),
      peerId: direct.id,
      ...(direct.channel === undefined ? {} : { channel: direct.channel }),
      ...(direct.accountId === undefined ? {} : { accountId: direct.accountId }),
      ...threadFields,
    };
  }
  if (group !== null && group.channel !== undefined) {
    return {
      kind: group.marker as GroupKind,
      ...base(rest),
      channel: group.channel,
      ...(group.accountId === undefined ? {} : { accountId: group.accountId }),
      groupId: group.id,
      ...threadFields,
    };
  }
  return { kind: 'legacy', ...base(rest), key: rest };
}

interface Marked {
  /** The marker's segment index. */
  readonly at: number;
  readonly marker: string;
  readonly prefix: readonly string[];
  readonly channel?: string;
  readonly accountId?: string;
  readonly id: string;
}

/**
 * Finds `[ch:[account:]]<marker>:<id>`: the marker at segment `minAt`..2 (the first that fits),
 * every segment before it non-empty and a non-empty id after it (which may contain `:`).
 */
function matchMarked(
  segs: readonly string[],
  minAt: number,
  isMarker: (s: string) => boolean,
): Marked | null {
  for (let at = minAt; at <= 2 && at < segs.length - 1; at++) {
    const prefix = segs.slice(0, at);
    if (!isMarker(segs[at] ?? '') || prefix.some((s) => s === '')) continue;
    const id = segs.slice(at + 1).join(':');
    if (id === '') continue;
    return {
      at,
      marker: segs[at] ?? '',
      prefix,
      ...(prefix[0] === undefined ? {} : { channel: prefix[0] }),
      ...(prefix[1] === undefined ? {} : { accountId: prefix[1] }),
      id,
    };
  }
  return null;
}

/** Peels a trailing `:thread:<tid>` and/or `:topic:<n>` (at most one of each) off a rest. */
function splitThreadSuffix(rest: string): {
  head: string;
  suffix: string;
  thread?: string;
  topic?: string;
} {
  let head = rest;
  let thread: string | undefined;
  let topic: string | undefined;
  for (;;) {
    const t = thread === undefined ? head.lastIndexOf(':thread:') : -1;
    const p = topic === undefined ? head.lastIndexOf(':topic:') : -1;
    const at = Math.max(t, p);
    if (at <= 0) break;
    const marker = at === t ? ':thread:' : ':topic:';
    const id = head.slice(at + marker.length);
    if (id === '') break;
    if (at === t) thread = id;
    else topic = id;
    head = head.slice(0, at);
  }
  return { head, suffix: rest.slice(head.length), thread, topic };
}

function clip(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 200)}…`;
}
