/**
 * Token and cost reports of the OpenClaw gateway (reference/openclaw-gateway-v4.md §4.4,
 * §4.12–§4.14): `usage.cost`, `sessions.usage`, `sessions.usage.timeseries` and
 * `sessions.usage.logs`, computed from {@link UsageRecord}s — one per model call, which the
 * gateway derives from Warden's event log and budgets (one source of truth).
 *
 * Days, zones and params are in `usage-range.ts` (re-exported here). `daily` rows cover every
 * day of the range, zero-filled. A record without a cost counts in `missingCostEntries`. Pure:
 * `now` is a parameter.
 */
import { agentIdOfKey } from './session-list.ts';
import {
  resolveDayRange,
  resolveDayZone,
  type SessionsUsageParams,
  USAGE_LOG_LIMITS,
  type UsageContext,
  type UsageCostParams,
} from './usage-range.ts';

export {
  type DayRange,
  type DayZone,
  MAX_RANGE_DAYS,
  parseUtcOffset,
  type RangeParams,
  resolveDayRange,
  resolveDayZone,
  type SessionsUsageLogsParams,
  sessionsUsageLogsParams,
  type SessionsUsageParams,
  sessionsUsageParams,
  type SessionsUsageTimeseriesParams,
  sessionsUsageTimeseriesParams,
  USAGE_LOG_LIMITS,
  type UsageContext,
  type UsageCostParams,
  usageCostParams,
  type ZoneParams,
} from './usage-range.ts';

export interface UsageCost {
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly total: number;
}

/** One model call's usage. */
export interface UsageRecord {
  /** ms since the epoch. */
  readonly ts: number;
  readonly sessionKey: string;
  readonly sessionId?: string;
  readonly agentId: string;
  readonly channel?: string;
  readonly model?: string;
  readonly provider?: string;
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  /** USD; absent when the model has no known price (counted in `missingCostEntries`). */
  readonly cost?: UsageCost;
}

/** §4 `Totals`. `totalTokens` includes cache reads and writes. */
export interface Totals {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  totalTokens: number;
  totalCost: number;
  inputCost: number;
  outputCost: number;
  cacheReadCost: number;
  cacheWriteCost: number;
  missingCostEntries: number;
}

export function emptyTotals(): Totals {
  return {
    input: 0,
    output: 0,
    cacheRead: 0,
    cacheWrite: 0,
    totalTokens: 0,
    totalCost: 0,
    inputCost: 0,
    outputCost: 0,
    cacheReadCost: 0,
    cacheWriteCost: 0,
    missingCostEntries: 0,
  };
}

function addRecord(t: Totals, r: UsageRecord): void {
  t.input += r.input;
  t.output += r.output;
  t.cacheRead += r.cacheRead;
  t.cacheWrite += r.cacheWrite;
  t.totalTokens += r.input + r.output + r.cacheRead + r.cacheWrite;
  if (r.cost === undefined) {
    t.missingCostEntries += 1;
    return;
  }
  t.totalCost += r.cost.total;
  t.inputCost += r.cost.input;
  t.outputCost += r.cost.output;
  t.cacheReadCost += r.cost.cacheRead;
  t.cacheWriteCost += r.cost.cacheWrite;
}

function addTotals(t: Totals, s: Totals): void {
  for (const k of Object.keys(s) as (keyof Totals)[]) t[k] += s[k];
}

/** The totals of `records`. */
export function sumTotals(records: readonly UsageRecord[]): Totals {
  const t = emptyTotals();
  for (const r of records) addRecord(t, r);
  return t;
}

// ---------------------------------------------------------------------------------------------
// usage.cost

export interface CostUsageSummary {
  readonly updatedAt: number;
  readonly days: number;
  readonly daily: (Totals & { readonly date: string })[];
  readonly totals: Totals;
}

/** `usage.cost` (§4.4): totals per day of the range (zero-filled) and overall. */
export function usageCost(
  records: readonly UsageRecord[],
  params: UsageCostParams,
  now: number,
  ctx: UsageContext = {},
): CostUsageSummary {
  const zone = resolveDayZone(params, ctx.gatewayTimeZone);
  const range = resolveDayRange(params, zone.dayOf(now));
  const agent = params.agentScope === 'all' ? undefined : params.agentId?.toLowerCase();
  const byDay = new Map(range.days.map((d) => [d, emptyTotals()]));
  for (const r of records) {
    if (agent !== undefined && r.agentId.toLowerCase() !== agent) continue;
    const t = byDay.get(zone.dayOf(r.ts));
    if (t !== undefined) addRecord(t, r);
  }
  const totals = emptyTotals();
  const daily = range.days.map((d) => {
    const t = byDay.get(d) as Totals;
    addTotals(totals, t);
    return { date: d, ...t };
  });
  return { updatedAt: now, days: range.days.length, daily, totals };
}

// ---------------------------------------------------------------------------------------------
// sessions.usage

/** One transcript line of a session (what `sessions.usage.logs` returns). */
export interface UsageLogEntry {
  /** ms since the epoch. */
  readonly timestamp: number;
  readonly role: 'user' | 'assistant' | 'tool' | 'toolResult';
  readonly content: string;
  readonly tokens?: number;
  readonly cost?: number;
  /** For `tool` and `toolResult` entries. */
  readonly toolName?: string;
  /** A failed assistant turn or tool result (counted in `errors`). */
  readonly isError?: boolean;
}

/** Guard decisions taken in a session (the Rust rewrite's allow/review/block counters). */
export interface ActionCounts {
  readonly allowed: number;
  readonly review: number;
  readonly blocked: number;
}

/** What the gateway knows about a session besides its usage records. */
export interface UsageSessionInfo {
  readonly key: string;
  /** The current session id (records without one are attributed to it). */
  readonly sessionId?: string;
  readonly label?: string;
  readonly updatedAt?: number;
  readonly agentId?: string;
  readonly channel?: string;
  readonly chatType?: string;
  readonly model?: string;
  readonly modelProvider?: string;
  /** Transcript lines, for message and tool counts. */
  readonly logs?: readonly UsageLogEntry[];
  readonly actions?: ActionCounts;
  /** Reported as `contextWeight` with `includeContextWeight` (null when absent). */
  readonly contextWeight?: unknown;
}

export interface MessageCounts {
  total: number;
  user: number;
  assistant: number;
  toolCalls: number;
  toolResults: number;
  errors: number;
}

export interface ToolUsage {
  readonly totalCalls: number;
  readonly uniqueTools: number;
  readonly tools: { readonly name: string; readonly count: number }[];
}

export type SessionUsage = Totals & {
  readonly messageCounts: MessageCounts;
  readonly toolUsage: ToolUsage;
  readonly firstActivity?: number;
  readonly lastActivity?: number;
  readonly durationMs?: number;
};

export interface SessionUsageRow {
  readonly key: string;
  readonly label?: string;
  readonly sessionId?: string;
  readonly updatedAt?: number;
  readonly agentId?: string;
  readonly channel?: string;
  readonly chatType?: string;
  readonly model?: string;
  readonly modelProvider?: string;
  readonly usage: SessionUsage | null;
  readonly contextWeight?: unknown;
}

export interface ModelUsage {
  readonly provider?: string;
  readonly model?: string;
  count: number;
  readonly totals: Totals;
}

export interface DailyUsage {
  readonly date: string;
  tokens: number;
  cost: number;
  messages: number;
  toolCalls: number;
  errors: number;
}

export interface SessionsUsageResult {
  readonly updatedAt: number;
  readonly startDate: string;
  readonly endDate: string;
  readonly sessions: SessionUsageRow[];
  readonly totals: Totals;
  readonly actions: ActionCounts & { readonly total: number };
  readonly aggregates: {
    readonly sessionCount: number;
    readonly messages: MessageCounts;
    readonly tools: ToolUsage;
    readonly byModel: ModelUsage[];
    readonly byProvider: ModelUsage[];
    readonly byAgent: { readonly agentId: string; readonly totals: Totals }[];
    readonly byChannel: { readonly channel: string; readonly totals: Totals }[];
    readonly daily: DailyUsage[];
  };
}

function emptyCounts(): MessageCounts {
  return { total: 0, user: 0, assistant: 0, toolCalls: 0, toolResults: 0, errors: 0 };
}

/**
 * Counts one transcript line: user, assistant and tool-result lines are messages (`total`); a
 * tool line is a call (`toolCalls`); failed assistant turns and tool results are `errors`.
 */
function countLog(c: MessageCounts, e: UsageLogEntry): void {
  switch (e.role) {
    case 'user':
      c.user += 1;
      c.total += 1;
      break;
    case 'assistant':
      c.assistant += 1;
      c.total += 1;
      break;
    case 'tool':
      c.toolCalls += 1;
      break;
    case 'toolResult':
      c.toolResults += 1;
      c.total += 1;
      break;
  }
  if (e.isError === true && e.role !== 'tool') c.errors += 1;
}

function toolUsageOf(counts: Map<string, number>): ToolUsage {
  const tools = [...counts]
    .map(([name, count]) => ({ name, count }))
    .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1));
  return {
    totalCalls: tools.reduce((s, t) => s + t.count, 0),
    uniqueTools: tools.length,
    tools,
  };
}

function byCost<T extends { readonly totals: Totals }>(a: T, b: T): number {
  return b.totals.totalCost - a.totals.totalCost || b.totals.totalTokens - a.totals.totalTokens;
}

interface RowAcc {
  readonly key: string;
  readonly sessionId: string | undefined;
  readonly records: UsageRecord[];
  readonly logs: UsageLogEntry[];
}

/**
 * `sessions.usage` (§4.12 and the seed): per-session usage rows (newest first, at most
 * `limit`), and over every matching session (not only the rows shown) the totals, the guard
 * `actions`, and the aggregates `messages`, `tools`, `byModel`, `byProvider`, `byAgent`,
 * `byChannel` and `daily` (one row per day of the range). Rows are per session id
 * (`groupBy: "instance"`, the default) or per key (`"family"`, or `includeHistorical`).
 */
export function sessionsUsage(
  records: readonly UsageRecord[],
  sessions: readonly UsageSessionInfo[],
  params: SessionsUsageParams,
  now: number,
  ctx: UsageContext = {},
): SessionsUsageResult {
  const zone = resolveDayZone(params, ctx.gatewayTimeZone);
  const agent = params.agentScope === 'all' ? undefined : params.agentId?.toLowerCase();
  const info = new Map(sessions.map((s) => [s.key, s]));
  const agentOfKey = (key: string, fallback?: string) =>
    (agentIdOfKey(key) ?? info.get(key)?.agentId ?? fallback)?.toLowerCase();
  const inScope = (key: string, recordAgent?: string) =>
    (params.key === undefined || key === params.key) &&
    (agent === undefined || (recordAgent?.toLowerCase() ?? agentOfKey(key)) === agent);

  const scopedRecords = records.filter((r) => inScope(r.sessionKey, r.agentId));
  const scopedSessions = sessions.filter((s) => inScope(s.key));
  let earliest: string | undefined;
  const see = (ts: number) => {
    const d = zone.dayOf(ts);
    if (earliest === undefined || d < earliest) earliest = d;
  };
  if (params.range === 'all' && params.startDate === undefined && params.endDate === undefined) {
    for (const r of scopedRecords) see(r.ts);
    for (const s of scopedSessions) for (const e of s.logs ?? []) see(e.timestamp);
  }
  const range = resolveDayRange(params, zone.dayOf(now), earliest);
  const inRange = (ts: number) => {
    const d = zone.dayOf(ts);
    return d >= range.startDate && d <= range.endDate;
  };

  const family = params.groupBy === 'family' || params.includeHistorical;
  const rows = new Map<string, RowAcc>();
  const rowFor = (key: string, sessionId: string | undefined): RowAcc => {
    const sid = family ? undefined : sessionId;
    const id = `${key}\u0000${sid ?? ''}`;
    let acc = rows.get(id);
    if (acc === undefined) {
      acc = { key, sessionId: family ? info.get(key)?.sessionId : sid, records: [], logs: [] };
      rows.set(id, acc);
    }
    return acc;
  };
  for (const r of scopedRecords)
    if (inRange(r.ts))
      rowFor(r.sessionKey, r.sessionId ?? info.get(r.sessionKey)?.sessionId).records.push(r);
  for (const s of scopedSessions) {
    const logs = (s.logs ?? []).filter((e) => inRange(e.timestamp));
    if (logs.length > 0) rowFor(s.key, s.sessionId).logs.push(...logs);
  }
  if (params.key !== undefined && rows.size === 0)
    rowFor(params.key, info.get(params.key)?.sessionId);

  const totals = emptyTotals();
  const messages = emptyCounts();
  const toolCounts = new Map<string, number>();
  const byModel = new Map<string, ModelUsage>();
  const byProvider = new Map<string, ModelUsage>();
  const byAgent = new Map<string, Totals>();
  const byChannel = new Map<string, Totals>();
  const daily = new Map(
    range.days.map((d): [string, DailyUsage] => [
      d,
      { date: d, tokens: 0, cost: 0, messages: 0, toolCalls: 0, errors: 0 },
    ]),
  );
  const group = <T>(map: Map<string, T>, key: string, make: () => T): T => {
    let v = map.get(key);
    if (v === undefined) map.set(key, (v = make()));
    return v;
  };

  const out: (SessionUsageRow & { readonly sortAt: number })[] = [];
  for (const acc of rows.values()) {
    const s = info.get(acc.key);
    const rowTotals = emptyTotals();
    const counts = emptyCounts();
    const rowTools = new Map<string, number>();
    let first = Infinity;
    let last = -Infinity;
    for (const r of acc.records) {
      addRecord(rowTotals, r);
      first = Math.min(first, r.ts);
      last = Math.max(last, r.ts);
      const provider = r.provider ?? s?.modelProvider;
      const model = r.model ?? s?.model;
      const opt = { ...(provider === undefined ? {} : { provider }) };
      const m = group(byModel, `${provider ?? ''}\u0000${model ?? ''}`, () => ({
        ...opt,
        ...(model === undefined ? {} : { model }),
        count: 0,
        totals: emptyTotals(),
      }));
      m.count += 1;
      addRecord(m.totals, r);
      const p = group(byProvider, provider ?? '', () => ({
        ...opt,
        count: 0,
        totals: emptyTotals(),
      }));
      p.count += 1;
      addRecord(p.totals, r);
      addRecord(group(byAgent, r.agentId.toLowerCase(), emptyTotals), r);
      const channel = r.channel ?? s?.channel;
      if (channel !== undefined) addRecord(group(byChannel, channel, emptyTotals), r);
      const day = daily.get(zone.dayOf(r.ts)) as DailyUsage;
      day.tokens += r.input + r.output + r.cacheRead + r.cacheWrite;
      day.cost += r.cost?.total ?? 0;
    }
    for (const e of acc.logs) {
      countLog(counts, e);
      first = Math.min(first, e.timestamp);
      last = Math.max(last, e.timestamp);
      if (e.role === 'tool') {
        const tool = e.toolName ?? 'unknown';
        rowTools.set(tool, (rowTools.get(tool) ?? 0) + 1);
        toolCounts.set(tool, (toolCounts.get(tool) ?? 0) + 1);
      }
      const day = daily.get(zone.dayOf(e.timestamp)) as DailyUsage;
      if (e.role === 'tool') day.toolCalls += 1;
      else day.messages += 1;
      if (e.isError === true && e.role !== 'tool') day.errors += 1;
    }
    addTotals(totals, rowTotals);
    for (const k of Object.keys(counts) as (keyof MessageCounts)[]) messages[k] += counts[k];
    const empty = acc.records.length === 0 && acc.logs.length === 0;
    const usage: SessionUsage | null = empty
      ? null
      : {
          ...rowTotals,
          messageCounts: counts,
          toolUsage: toolUsageOf(rowTools),
          firstActivity: first,
          lastActivity: last,
          durationMs: last - first,
        };
    // An earlier instance (a rotated session id) was last updated by its own last activity.
    const current = family || acc.sessionId === s?.sessionId;
    const updatedAt = (current ? s?.updatedAt : undefined) ?? (empty ? undefined : last);
    const agentId = agentOfKey(acc.key, acc.records[0]?.agentId);
    const channel = s?.channel ?? acc.records.find((r) => r.channel !== undefined)?.channel;
    out.push({
      key: acc.key,
      ...(s?.label === undefined ? {} : { label: s.label }),
      ...(acc.sessionId === undefined ? {} : { sessionId: acc.sessionId }),
      ...(updatedAt === undefined ? {} : { updatedAt }),
      ...(agentId === undefined ? {} : { agentId }),
      ...(channel === undefined ? {} : { channel }),
      ...(s?.chatType === undefined ? {} : { chatType: s.chatType }),
      ...(s?.model === undefined ? {} : { model: s.model }),
      ...(s?.modelProvider === undefined ? {} : { modelProvider: s.modelProvider }),
      usage,
      ...(params.includeContextWeight ? { contextWeight: s?.contextWeight ?? null } : {}),
      sortAt: updatedAt ?? 0,
    });
  }
  out.sort((a, b) => b.sortAt - a.sortAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const actions = { allowed: 0, review: 0, blocked: 0 };
  for (const key of new Set(out.map((r) => r.key))) {
    const a = info.get(key)?.actions;
    if (a === undefined) continue;
    actions.allowed += a.allowed;
    actions.review += a.review;
    actions.blocked += a.blocked;
  }

  return {
    updatedAt: now,
    startDate: range.startDate,
    endDate: range.endDate,
    sessions: out.slice(0, params.limit).map(({ sortAt: _s, ...row }) => row),
    totals,
    actions: { ...actions, total: actions.allowed + actions.review + actions.blocked },
    aggregates: {
      sessionCount: out.length,
      messages,
      tools: toolUsageOf(toolCounts),
      byModel: [...byModel.values()].sort(byCost),
      byProvider: [...byProvider.values()].sort(byCost),
      byAgent: [...byAgent].map(([agentId, t]) => ({ agentId, totals: t })).sort(byCost),
      byChannel: [...byChannel].map(([channel, t]) => ({ channel, totals: t })).sort(byCost),
      daily: [...daily.values()],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// sessions.usage.timeseries and sessions.usage.logs

export interface UsagePoint {
  readonly timestamp: number;
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly totalTokens: number;
  readonly cost: number;
  readonly cumulativeTokens: number;
  readonly cumulativeCost: number;
}

/** At most this many points per series (§4.13). */
export const TIMESERIES_MAX_POINTS = 200;

/**
 * `sessions.usage.timeseries` (§4.13): the session's records in time order as points with
 * running totals. Over {@link TIMESERIES_MAX_POINTS} records, consecutive records are merged
 * into that many evenly sized buckets (each point stamped with its last record), so the last
 * cumulative values still equal the session's totals.
 */
export function usageTimeseries(
  records: readonly UsageRecord[],
  key: string,
  maxPoints = TIMESERIES_MAX_POINTS,
): { sessionId?: string; points: UsagePoint[] } {
  const own = records
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.sessionKey === key)
    .sort((a, b) => a.r.ts - b.r.ts || a.i - b.i)
    .map(({ r }) => r);
  const buckets = Math.min(own.length, Math.max(1, Math.floor(maxPoints)));
  const points: UsagePoint[] = [];
  let cumulativeTokens = 0;
  let cumulativeCost = 0;
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * own.length) / buckets);
    const to = Math.floor(((b + 1) * own.length) / buckets);
    const t = sumTotals(own.slice(from, to));
    cumulativeTokens += t.totalTokens;
    cumulativeCost += t.totalCost;
    points.push({
      timestamp: (own[to - 1] as UsageRecord).ts,
      input: t.input,
      output: t.output,
      cacheRead: t.cacheRead,
      cacheWrite: t.cacheWrite,
      totalTokens: t.totalTokens,
      cost: t.totalCost,
      cumulativeTokens,
      cumulativeCost,
    });
  }
  const sessionId = own.at(-1)?.sessionId;
  return sessionId === undefined ? { points } : { sessionId, points };
}

/**
 * `sessions.usage.logs` (§4.14): the newest `limit` entries (default 200, at most 1000), oldest
 * first.
 */
export function usageLogs(
  entries: readonly UsageLogEntry[],
  limit: number = USAGE_LOG_LIMITS.defaultLimit,
): { logs: UsageLogEntry[] } {
  const n = Math.min(Math.max(1, Math.floor(limit)), USAGE_LOG_LIMITS.maxLimit);
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.timestamp - b.e.timestamp || a.i - b.i)
    .map(({ e }) => e);
  return { logs: sorted.slice(-n) };
}
