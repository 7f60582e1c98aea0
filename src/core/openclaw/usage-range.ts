/**
 * Calendar days, time zones and params of the OpenClaw usage reports
 * (reference/openclaw-gateway-v4.md §4.4, §4.12–§4.14). Days are calendar days in a zone chosen
 * per call: `mode: "utc"` (the default), `"gateway"` (the gateway's zone, a parameter here), or
 * `"specific"` with an IANA `timeZone` (preferred) or a fixed `utcOffset` such as `+05:30` or
 * `UTC-4`. Ranges are inclusive `YYYY-MM-DD` dates, at most {@link MAX_RANGE_DAYS} days. Pure:
 * `Intl` is used only to read time zones.
 */
import { z } from 'zod';

import { WardenError } from '../errors.ts';
import { param } from '../params.ts';

// ---------------------------------------------------------------------------------------------
// Days and zones

const DAY_MS = 86_400_000;
/** The longest range a report covers (about 10 years): bounds the zero-filled `daily` rows. */
export const MAX_RANGE_DAYS = 3_660;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const OFFSET = /^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?([0-5]\d))?$/i;

function isDate(value: string): boolean {
  const m = DATE.exec(value);
  if (m === null) return false;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Date(ms).toISOString().slice(0, 10) === value;
}

function addDays(date: string, n: number): string {
  const m = DATE.exec(date) as RegExpExecArray;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + n))
    .toISOString()
    .slice(0, 10);
}

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS);
}

/** Minutes east of UTC for `+05:30`, `UTC-4`, `GMT+9` or `UTC`; undefined when malformed. */
export function parseUtcOffset(value: string): number | undefined {
  const v = value.trim();
  if (/^(?:UTC|GMT|Z)$/i.test(v)) return 0;
  const m = OFFSET.exec(v);
  if (m === null) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0);
  if (minutes > 14 * 60) return undefined;
  return m[1] === '-' ? -minutes : minutes;
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** How timestamps become calendar days. */
export interface DayZone {
  /** `UTC`, `UTC+05:30` or the IANA name. */
  readonly name: string;
  /** The `YYYY-MM-DD` day of `ts` in this zone. */
  dayOf(ts: number): string;
}

function offsetZone(minutes: number): DayZone {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return {
    name: minutes === 0 ? 'UTC' : `UTC${sign}${hh}:${mm}`,
    dayOf: (ts) => new Date(ts + minutes * 60_000).toISOString().slice(0, 10),
  };
}

function ianaZone(name: string): DayZone {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: name,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  });
  return {
    name,
    dayOf: (ts) => {
      const parts: Record<string, string> = {};
      for (const p of format.formatToParts(ts)) parts[p.type] = p.value;
      return `${parts.year}-${parts.month}-${parts.day}`;
    },
  };
}

function zoneNamed(value: string): DayZone {
  const offset = parseUtcOffset(value);
  return offset === undefined ? ianaZone(value) : offsetZone(offset);
}

export interface ZoneParams {
  readonly mode?: 'utc' | 'gateway' | 'specific' | undefined;
  readonly timeZone?: string | undefined;
  readonly utcOffset?: string | undefined;
}

/**
 * The zone of a report. `utc` (the default when nothing is given), `gateway` (the gateway's
 * zone), or `specific`: `timeZone` when given, else `utcOffset`. A `timeZone`/`utcOffset` without
 * `mode` means `specific`. INVALID_PARAMS for `specific` with neither, or a malformed zone.
 */
export function resolveDayZone(params: ZoneParams, gatewayTimeZone = 'UTC'): DayZone {
  const mode =
    params.mode ??
    (params.timeZone !== undefined || params.utcOffset !== undefined ? 'specific' : 'utc');
  if (mode === 'utc') return offsetZone(0);
  if (mode === 'gateway') {
    if (parseUtcOffset(gatewayTimeZone) === undefined && !isTimeZone(gatewayTimeZone))
      throw unknownZone('gatewayTimeZone', gatewayTimeZone);
    return zoneNamed(gatewayTimeZone);
  }
  if (params.timeZone !== undefined) {
    if (!isTimeZone(params.timeZone)) throw unknownZone('timeZone', params.timeZone);
    return ianaZone(params.timeZone);
  }
  if (params.utcOffset !== undefined) {
    const offset = parseUtcOffset(params.utcOffset);
    if (offset === undefined) throw unknownZone('utcOffset', params.utcOffset);
    return offsetZone(offset);
  }
  throw new WardenError(
    'INVALID_PARAMS',
    "mode: 'specific' needs timeZone (an IANA name such as Europe/Berlin) or utcOffset (such as +05:30)",
  );
}

function unknownZone(field: string, value: string): WardenError {
  return new WardenError(
    'INVALID_PARAMS',
    `${field}: unknown time zone ${JSON.stringify(value)}; use an IANA name such as Europe/Berlin, or an offset such as +05:30 or UTC-4`,
    { details: { [field]: value } },
  );
}

export interface DayRange {
  readonly startDate: string;
  readonly endDate: string;
  /** Every day from start to end, inclusive. */
  readonly days: readonly string[];
}

export interface RangeParams {
  readonly startDate?: string | undefined;
  readonly endDate?: string | undefined;
  readonly days?: number | undefined;
  readonly range?: '7d' | '30d' | '90d' | '1y' | 'all' | undefined;
}

const PRESET_DAYS = { '7d': 7, '30d': 30, '90d': 90, '1y': 365 } as const;

/**
 * The inclusive day range of a report: `startDate`..`endDate` (either alone runs to today, or
 * back `days` from the end), else the last `days`, else the `range` preset (`all` starts at
 * `earliest`), else the last 30 days. INVALID_PARAMS when start is after end or the range is
 * longer than {@link MAX_RANGE_DAYS} (`all` is clamped instead).
 */
export function resolveDayRange(params: RangeParams, today: string, earliest?: string): DayRange {
  let start: string;
  let end: string;
  const span = (n: number) => addDays(end, -(n - 1));
  if (params.startDate !== undefined || params.endDate !== undefined) {
    end = params.endDate ?? (params.startDate! > today ? params.startDate! : today);
    start = params.startDate ?? span(params.days ?? 30);
    if (start > end)
      throw new WardenError(
        'INVALID_PARAMS',
        `startDate ${start} is after endDate ${end}; give an inclusive range with startDate ≤ endDate`,
        { details: { startDate: start, endDate: end } },
      );
  } else {
    end = today;
    if (params.days !== undefined) start = span(params.days);
    else if (params.range === 'all') {
      start = earliest !== undefined && earliest < today ? earliest : today;
      if (daysBetween(start, end) >= MAX_RANGE_DAYS) start = span(MAX_RANGE_DAYS);
    } else start = span(params.range === undefined ? 30 : PRESET_DAYS[params.range]);
  }
  const count = daysBetween(start, end) + 1;
  if (count > MAX_RANGE_DAYS)
    throw new WardenError(
      'INVALID_PARAMS',
      `the range ${start}..${end} covers ${count} days; at most ${MAX_RANGE_DAYS} are reported, narrow it`,
      { details: { startDate: start, endDate: end, days: count } },
    );
  const days: string[] = [];
  for (let i = 0; i < count; i++) days.push(addDays(start, i));
  return { startDate: start, endDate: end, days };
}

// ---------------------------------------------------------------------------------------------
// Params schemas

const PARAMS_OBJECT = { error: 'expected a params object' } as const;
const date = param.is<string>('a date as YYYY-MM-DD', (v) => typeof v === 'string' && isDate(v));
const modeParam = param.oneOf(['utc', 'gateway', 'specific']).optional();
const timeZoneParam = param
  .is<string>(
    'an IANA time zone such as Europe/Berlin',
    (v) => typeof v === 'string' && isTimeZone(v),
  )
  .optional();
const utcOffsetParam = param
  .is<string>(
    'a UTC offset such as +05:30 or UTC-4',
    (v) => typeof v === 'string' && parseUtcOffset(v) !== undefined,
  )
  .optional();
const name = (what: string, max = 256) => param.nonEmpty(what, max).optional();

/** `usage.cost` params (§4.4). `days` defaults to 30. */
export const usageCostParams = z.object(
  {
    days: param.int(1, MAX_RANGE_DAYS).optional(),
    startDate: date.optional(),
    endDate: date.optional(),
    mode: modeParam,
    timeZone: timeZoneParam,
    utcOffset: utcOffsetParam,
    agentId: name('an agent id', 64),
    agentScope: param.oneOf(['all']).optional(),
  },
  PARAMS_OBJECT,
);
export type UsageCostParams = z.output<typeof usageCostParams>;

/** `sessions.usage` params (§4.12). `limit` (session rows) defaults to 50. */
export const sessionsUsageParams = z.object(
  {
    key: name('a session key', 512),
    agentId: name('an agent id', 64),
    agentScope: param.oneOf(['all']).optional(),
    creatorKey: name('a creator key'),
    startDate: date.optional(),
    endDate: date.optional(),
    mode: modeParam,
    range: param.oneOf(['7d', '30d', '90d', '1y', 'all']).optional(),
    groupBy: param.oneOf(['instance', 'family']).default('instance'),
    includeHistorical: param.boolean().default(false),
    utcOffset: utcOffsetParam,
    timeZone: timeZoneParam,
    limit: param.int(1).default(50),
    includeContextWeight: param.boolean().default(false),
  },
  PARAMS_OBJECT,
);
export type SessionsUsageParams = z.output<typeof sessionsUsageParams>;

/** `sessions.usage.timeseries` params (§4.13). */
export const sessionsUsageTimeseriesParams = z.object(
  { key: param.nonEmpty('a session key', 512), agentId: name('an agent id', 64) },
  PARAMS_OBJECT,
);
export type SessionsUsageTimeseriesParams = z.output<typeof sessionsUsageTimeseriesParams>;

/** Log bounds of `sessions.usage.logs` (§4.14). */
export const USAGE_LOG_LIMITS = { defaultLimit: 200, maxLimit: 1_000 } as const;

/** `sessions.usage.logs` params (§4.14): `limit` default 200, at most 1000. */
export const sessionsUsageLogsParams = z.object(
  {
    key: param.nonEmpty('a session key', 512),
    agentId: name('an agent id', 64),
    limit: param
      .int(1)
      .default(USAGE_LOG_LIMITS.defaultLimit)
      .transform((v) => Math.min(v, USAGE_LOG_LIMITS.maxLimit)),
  },
  PARAMS_OBJECT,
);
export type SessionsUsageLogsParams = z.output<typeof sessionsUsageLogsParams>;

export interface UsageContext {
  /** The gateway's zone for `mode: "gateway"` (IANA name or offset); @default 'UTC' */
  readonly gatewayTimeZone?: string;
}
