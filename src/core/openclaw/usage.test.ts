import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../errors.ts';
import { checkParams } from '../params.ts';
import {
  MAX_RANGE_DAYS,
  parseUtcOffset,
  resolveDayRange,
  resolveDayZone,
  sessionsUsage,
  sessionsUsageLogsParams,
  sessionsUsageParams,
  sumTotals,
  TIMESERIES_MAX_POINTS,
  usageCost,
  usageCostParams,
  type UsageLogEntry,
  usageLogs,
  type UsageRecord,
  type UsageSessionInfo,
  usageTimeseries,
} from './usage.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 15, 12, 0, 0); // 2026-06-15 12:00 UTC

function rec(ts: number, extra: Partial<UsageRecord> = {}): UsageRecord {
  return {
    ts,
    sessionKey: 'agent:main:main',
    agentId: 'main',
    input: 100,
    output: 50,
    cacheRead: 10,
    cacheWrite: 5,
    cost: { input: 0.1, output: 0.2, cacheRead: 0.01, cacheWrite: 0.02, total: 0.33 },
    ...extra,
  };
}

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isWardenError(e, 'INVALID_PARAMS')) return e.message;
    throw e;
  }
  throw new Error('expected INVALID_PARAMS');
}

const cost = (params: unknown, records: readonly UsageRecord[], ctx = {}) =>
  usageCost(records, checkParams('c', usageCostParams, params), NOW, ctx);
const su = (
  params: unknown,
  records: readonly UsageRecord[],
  sessions: readonly UsageSessionInfo[] = [],
) => sessionsUsage(records, sessions, checkParams('s', sessionsUsageParams, params), NOW);

describe('totals', () => {
  it('sums tokens (cache included) and costs; records without cost count as missing', () => {
    expect(sumTotals([rec(0), rec(1, { cost: undefined })])).toEqual({
      input: 200,
      output: 100,
      cacheRead: 20,
      cacheWrite: 10,
      totalTokens: 330,
      totalCost: 0.33,
      inputCost: 0.1,
      outputCost: 0.2,
      cacheReadCost: 0.01,
      cacheWriteCost: 0.02,
      missingCostEntries: 1,
    });
  });

  it('property: totals are additive over any split', () => {
    const r = fc.record({
      ts: fc.nat(),
      input: fc.nat(1e6),
      output: fc.nat(1e6),
      cacheRead: fc.nat(1e6),
      cacheWrite: fc.nat(1e6),
      priced: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(r, { maxLength: 30 }), fc.nat(30), (rows, at) => {
        const records = rows.map(({ priced, ...x }) =>
          rec(x.ts, { ...x, ...(priced ? {} : { cost: undefined }) }),
        );
        const all = sumTotals(records);
        const a = sumTotals(records.slice(0, at));
        const b = sumTotals(records.slice(at));
        expect(all.totalTokens).toBe(a.totalTokens + b.totalTokens);
        expect(all.totalTokens).toBe(all.input + all.output + all.cacheRead + all.cacheWrite);
        expect(all.missingCostEntries).toBe(rows.filter((x) => !x.priced).length);
        expect(all.totalCost).toBeCloseTo(a.totalCost + b.totalCost, 9);
      }),
    );
  });
});

describe('zones and ranges', () => {
  it.each([
    ['+05:30', 330],
    ['UTC-4', -240],
    ['GMT+9', 540],
    ['-0800', -480],
    ['UTC', 0],
    ['+15:00', undefined],
    ['5', undefined],
    ['Europe/Berlin', undefined],
  ])('parseUtcOffset(%j) = %j', (text, minutes) => {
    expect(parseUtcOffset(text)).toBe(minutes);
  });

  it('days are calendar days in the chosen zone', () => {
    const late = Date.UTC(2026, 5, 15, 22, 0); // 22:00 UTC
    expect(resolveDayZone({}).dayOf(late)).toBe('2026-06-15');
    expect(resolveDayZone({ mode: 'specific', utcOffset: '+05:30' }).dayOf(late)).toBe(
      '2026-06-16',
    );
    expect(resolveDayZone({ utcOffset: 'UTC-4' }).dayOf(Date.UTC(2026, 5, 16, 2))).toBe(
      '2026-06-15',
    );
    expect(resolveDayZone({ mode: 'specific', timeZone: 'Asia/Tokyo' }).dayOf(late)).toBe(
      '2026-06-16',
    );
    expect(
      resolveDayZone({ mode: 'gateway' }, 'America/New_York').dayOf(Date.UTC(2026, 5, 16, 2)),
    ).toBe('2026-06-15');
    expect(resolveDayZone({ mode: 'utc', timeZone: 'Asia/Tokyo' }).name).toBe('UTC');
  });

  it('rejects unknown zones and specific without a zone', () => {
    expect(invalid(() => resolveDayZone({ mode: 'specific', timeZone: 'Mars/Base' }))).toBe(
      'timeZone: unknown time zone "Mars/Base"; use an IANA name such as Europe/Berlin, or an offset such as +05:30 or UTC-4',
    );
    expect(invalid(() => resolveDayZone({ mode: 'specific' }))).toContain("mode: 'specific' needs");
    expect(invalid(() => cost({ timeZone: 'Mars/Base' }, []))).toBe(
      'c: timeZone: expected an IANA time zone such as Europe/Berlin (got "Mars/Base")',
    );
    expect(invalid(() => cost({ utcOffset: '+25' }, []))).toContain(
      'utcOffset: expected a UTC offset',
    );
  });

  it('resolves ranges inclusively', () => {
    expect(resolveDayRange({}, '2026-06-15').days.length).toBe(30);
    expect(resolveDayRange({ days: 1 }, '2026-06-15')).toEqual({
      startDate: '2026-06-15',
      endDate: '2026-06-15',
      days: ['2026-06-15'],
    });
    expect(resolveDayRange({ range: '7d' }, '2026-06-15').startDate).toBe('2026-06-09');
    expect(resolveDayRange({ range: '1y' }, '2026-06-15').days.length).toBe(365);
    expect(resolveDayRange({ range: 'all' }, '2026-06-15', '2026-01-01').startDate).toBe(
      '2026-01-01',
    );
    expect(resolveDayRange({ range: 'all' }, '2026-06-15').days).toEqual(['2026-06-15']);
    expect(
      resolveDayRange({ startDate: '2026-02-27', endDate: '2026-03-01' }, '2026-06-15').days,
    ).toEqual(['2026-02-27', '2026-02-28', '2026-03-01']);
    expect(resolveDayRange({ startDate: '2026-06-14' }, '2026-06-15').endDate).toBe('2026-06-15');
    expect(resolveDayRange({ endDate: '2026-01-10', days: 3 }, '2026-06-15').startDate).toBe(
      '2026-01-08',
    );
    expect(
      invalid(() =>
        resolveDayRange({ startDate: '2026-03-02', endDate: '2026-03-01' }, '2026-06-15'),
      ),
    ).toContain('is after endDate');
    expect(
      invalid(() =>
        resolveDayRange({ startDate: '1990-01-01', endDate: '2026-01-01' }, '2026-06-15'),
      ),
    ).toContain(`at most ${MAX_RANGE_DAYS}`);
    expect(resolveDayRange({ range: 'all' }, '2026-06-15', '1990-01-01').days.length).toBe(
      MAX_RANGE_DAYS,
    );
  });

  it('validates dates and days in the params', () => {
    expect(invalid(() => cost({ startDate: '2026-02-30', endDate: '2026-03-01' }, []))).toBe(
      'c: startDate: expected a date as YYYY-MM-DD (got "2026-02-30")',
    );
    expect(invalid(() => cost({ days: 0 }, []))).toContain('days: expected an integer from 1 to');
    expect(invalid(() => su({ range: '2w' }, []))).toContain("range: expected one of '7d'");
  });
});

describe('usage.cost', () => {
  it('reports one zero-filled row per day (default 30) and the totals', () => {
    const records = [
      rec(NOW),
      rec(NOW - DAY),
      rec(NOW - DAY, { cost: undefined }),
      rec(NOW - 40 * DAY),
    ];
    const r = cost({}, records);
    expect(r.updatedAt).toBe(NOW);
    expect(r.days).toBe(30);
    expect(r.daily.length).toBe(30);
    expect(r.daily[0]?.date).toBe('2026-05-17');
    expect(r.daily.at(-1)).toMatchObject({ date: '2026-06-15', totalTokens: 165 });
    expect(r.daily.at(-2)).toMatchObject({
      date: '2026-06-14',
      totalTokens: 330,
      missingCostEntries: 1,
    });
    expect(r.daily[10]).toMatchObject({ totalTokens: 0, totalCost: 0 });
    expect(r.totals).toMatchObject({ totalTokens: 495, missingCostEntries: 1 });
    expect(r.totals.totalCost).toBeCloseTo(0.66, 9);
  });

  it('filters by agent unless agentScope is all', () => {
    const records = [rec(NOW), rec(NOW, { agentId: 'ops' })];
    expect(cost({ agentId: 'OPS' }, records).totals.totalTokens).toBe(165);
    expect(cost({ agentId: 'ops', agentScope: 'all' }, records).totals.totalTokens).toBe(330);
  });

  it('honours the zone: a late record moves to the next day east of UTC', () => {
    const late = [rec(Date.UTC(2026, 5, 14, 22))];
    expect(cost({ days: 2 }, late).daily.map((d) => d.totalTokens)).toEqual([165, 0]);
    expect(cost({ days: 2, utcOffset: '+05:30' }, late).daily.map((d) => d.totalTokens)).toEqual([
      0, 165,
    ]);
    expect(
      cost({ days: 2, mode: 'gateway' }, late, { gatewayTimeZone: 'Asia/Tokyo' }).daily.map(
        (d) => d.totalTokens,
      ),
    ).toEqual([0, 165]);
  });

  it('property: totals equal the sum of the daily rows and of the records in range', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 60 * DAY }), { maxLength: 40 }), (ages) => {
        const records = ages.map((a) => rec(NOW - a));
        const r = cost({ days: 30 }, records);
        const inRange = records.filter((x) => x.ts >= Date.UTC(2026, 4, 17));
        expect(r.totals.totalTokens).toBe(sumTotals(inRange).totalTokens);
        expect(r.daily.reduce((s, d) => s + d.totalTokens, 0)).toBe(r.totals.totalTokens);
      }),
    );
  });
});

describe('sessions.usage', () => {
  const logs: UsageLogEntry[] = [
    { timestamp: NOW - 3000, role: 'user', content: 'hi' },
    { timestamp: NOW - 2000, role: 'tool', content: 'ls', toolName: 'exec' },
    { timestamp: NOW - 1900, role: 'toolResult', content: 'err', toolName: 'exec', isError: true },
    { timestamp: NOW - 1000, role: 'assistant', content: 'done' },
    { timestamp: NOW - 500, role: 'tool', content: 'get', toolName: 'browser' },
  ];
  const sessions: UsageSessionInfo[] = [
    {
      key: 'agent:main:main',
      sessionId: 's2',
      label: 'Main',
      updatedAt: NOW,
      channel: 'telegram',
      model: 'claude',
      modelProvider: 'anthropic',
      logs,
      actions: { allowed: 5, review: 2, blocked: 1 },
    },
    { key: 'agent:ops:x', updatedAt: NOW - DAY, actions: { allowed: 1, review: 0, blocked: 0 } },
  ];
  const records = [
    rec(NOW - 10 * DAY, { sessionId: 's1', model: 'gpt-5', provider: 'openai' }),
    rec(NOW - 1000, { sessionId: 's2' }),
    rec(NOW - DAY, {
      sessionKey: 'agent:ops:x',
      agentId: 'ops',
      channel: 'slack',
      cost: undefined,
    }),
    rec(NOW - 100 * DAY, { sessionId: 's0' }),
  ];

  it('reports the range, rows, totals, actions and aggregates', () => {
    const r = su({}, records, sessions);
    expect(r).toMatchObject({ updatedAt: NOW, startDate: '2026-05-17', endDate: '2026-06-15' });
    expect(r.sessions.map((s) => [s.key, s.sessionId])).toEqual([
      ['agent:main:main', 's2'],
      ['agent:ops:x', undefined],
      ['agent:main:main', 's1'], // the rotated-away instance, last active 10 days ago
    ]);
    expect(r.sessions[0]).toMatchObject({
      label: 'Main',
      agentId: 'main',
      channel: 'telegram',
      model: 'claude',
      modelProvider: 'anthropic',
      usage: {
        totalTokens: 165,
        messageCounts: { total: 3, user: 1, assistant: 1, toolCalls: 2, toolResults: 1, errors: 1 },
        toolUsage: { totalCalls: 2, uniqueTools: 2 },
      },
    });
    expect(r.totals).toMatchObject({ totalTokens: 495, missingCostEntries: 1 });
    expect(r.actions).toEqual({ allowed: 6, review: 2, blocked: 1, total: 9 });
    const a = r.aggregates;
    expect(a.sessionCount).toBe(3);
    expect(a.messages).toEqual({
      total: 3,
      user: 1,
      assistant: 1,
      toolCalls: 2,
      toolResults: 1,
      errors: 1,
    });
    expect(a.tools.tools).toEqual([
      { name: 'browser', count: 1 },
      { name: 'exec', count: 1 },
    ]);
    expect(a.byModel.map((m) => m.count)).toEqual([1, 1, 1]);
    expect(new Set(a.byModel.map((m) => `${m.provider}/${m.model}`))).toEqual(
      new Set(['openai/gpt-5', 'anthropic/claude', 'undefined/undefined']),
    );
    expect(a.byProvider.find((p) => p.provider === 'anthropic')?.count).toBe(1);
    expect(a.byAgent.map((x) => x.agentId).sort()).toEqual(['main', 'ops']);
    expect(a.byChannel.map((x) => x.channel).sort()).toEqual(['slack', 'telegram']);
    expect(a.daily.length).toBe(30);
    expect(a.daily.at(-1)).toMatchObject({ tokens: 165, messages: 3, toolCalls: 2, errors: 1 });
    expect(a.daily.at(-2)).toMatchObject({ tokens: 165, messages: 0 });
  });

  it('groupBy family (or includeHistorical) rolls rotated session ids into one row per key', () => {
    for (const params of [{ groupBy: 'family' }, { includeHistorical: true }]) {
      const r = su(params, records, sessions);
      expect(r.sessions.map((s) => [s.key, s.sessionId, s.usage?.totalTokens])).toEqual([
        ['agent:main:main', 's2', 330],
        ['agent:ops:x', undefined, 165],
      ]);
    }
  });

  it('limit caps the rows, not the totals', () => {
    const r = su({ limit: 1 }, records, sessions);
    expect(r.sessions.length).toBe(1);
    expect(r.totals.totalTokens).toBe(495);
    expect(r.aggregates.sessionCount).toBe(3);
  });

  it('key, agent and date range narrow the report; range all reaches the oldest record', () => {
    expect(su({ key: 'agent:ops:x' }, records, sessions).totals.totalTokens).toBe(165);
    expect(su({ agentId: 'main' }, records, sessions).actions.total).toBe(8);
    expect(su({ range: '7d' }, records, sessions).totals.totalTokens).toBe(330);
    const all = su({ range: 'all' }, records, sessions);
    expect(all.startDate).toBe('2026-03-07');
    expect(all.totals.totalTokens).toBe(660);
    const window = su({ startDate: '2026-06-05', endDate: '2026-06-05' }, records, sessions);
    expect(window.sessions.map((s) => s.sessionId)).toEqual(['s1']);
  });

  it('a requested key without usage still gets a row with usage null', () => {
    const r = su({ key: 'agent:none:x', includeContextWeight: true }, records, sessions);
    expect(r.sessions).toEqual([
      { key: 'agent:none:x', agentId: 'none', usage: null, contextWeight: null },
    ]);
    expect(r.actions.total).toBe(0);
  });
});

describe('sessions.usage.timeseries', () => {
  it('one point per record with running totals, in time order', () => {
    const records = [
      rec(30),
      rec(10, { cost: undefined }),
      rec(20),
      rec(5, { sessionKey: 'other' }),
    ];
    const r = usageTimeseries(records, 'agent:main:main');
    expect(r.points.map((p) => p.timestamp)).toEqual([10, 20, 30]);
    expect(r.points.map((p) => p.cumulativeTokens)).toEqual([165, 330, 495]);
    expect(r.points[0]?.cost).toBe(0);
    expect(r.points[2]?.cumulativeCost).toBeCloseTo(0.66, 9);
    expect(usageTimeseries([], 'x')).toEqual({ points: [] });
  });

  it('property: at most 200 points, downsampled evenly, cumulative totals preserved', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1200 }), (n) => {
        const records = Array.from({ length: n }, (_, i) => rec(i * 1000, { sessionId: `s${i}` }));
        const r = usageTimeseries(records, 'agent:main:main');
        expect(r.points.length).toBe(Math.min(n, TIMESERIES_MAX_POINTS));
        if (n === 0) return;
        const last = r.points.at(-1);
        expect(last?.cumulativeTokens).toBe(165 * n);
        expect(last?.timestamp).toBe((n - 1) * 1000);
        expect(r.sessionId).toBe(`s${n - 1}`);
        const sizes = r.points.map((p) => p.totalTokens / 165);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        for (let i = 1; i < r.points.length; i++)
          expect(r.points[i]!.timestamp).toBeGreaterThan(r.points[i - 1]!.timestamp);
      }),
      { numRuns: 50 },
    );
  });
});

describe('sessions.usage.logs', () => {
  const entries = Array.from({ length: 1500 }, (_, i): UsageLogEntry => ({
    timestamp: 1500 - i,
    role: 'user',
    content: `m${i}`,
  }));

  it('newest `limit` entries (default 200, max 1000), oldest first', () => {
    const d = usageLogs(entries);
    expect(d.logs.length).toBe(200);
    expect(d.logs[0]?.timestamp).toBe(1301);
    expect(d.logs.at(-1)?.timestamp).toBe(1500);
    expect(usageLogs(entries, 5000).logs.length).toBe(1000);
    expect(usageLogs(entries.slice(0, 3), 10).logs.map((e) => e.content)).toEqual([
      'm2',
      'm1',
      'm0',
    ]);
  });

  it('params: limit defaults to 200 and is clamped to 1000', () => {
    expect(checkParams('l', sessionsUsageLogsParams, { key: 'k' }).limit).toBe(200);
    expect(checkParams('l', sessionsUsageLogsParams, { key: 'k', limit: 5000 }).limit).toBe(1000);
    expect(
      invalid(() => checkParams('l', sessionsUsageLogsParams, { key: 'k', limit: 0 })),
    ).toContain('limit: expected a positive integer');
    expect(invalid(() => checkParams('l', sessionsUsageLogsParams, {}))).toContain('key:');
  });
});
