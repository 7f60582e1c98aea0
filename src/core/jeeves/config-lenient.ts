/**
 * The two PipelineConfig fields clients sent in more than one shape (§3.1 "Warden:"), read by
 * hand so each shape gets a precise message: `allowed_tools` (object or array) and
 * `edge_limits` (array with `from`/`to` or `from_stage`/`to_stage` keys, or an object keyed
 * `"from->to"`).
 */
import { isJsonObject } from '../json.ts';
import { describeValue, type ParamIssue } from '../params.ts';
import { END } from '../workflow/validate.ts';
import type { JeevesEdgeLimit } from './types.ts';

/** `{tool: bool}` from an object of booleans or an array of names (each allowed); null if unset. */
export function normaliseAllowedTools(
  value: unknown,
  path: string,
  issues: ParamIssue[],
): Record<string, boolean> | null {
  if (value === undefined || value === null) return null;
  const out: Record<string, boolean> = {};
  if (Array.isArray(value)) {
    value.forEach((tool, i) => {
      if (typeof tool === 'string') out[tool] = true;
      else
        issues.push({
          path: `${path}[${i}]`,
          message: `expected a tool name (got ${describeValue(tool)})`,
        });
    });
    return out;
  }
  if (isJsonObject(value)) {
    for (const [tool, allowed] of Object.entries(value)) {
      if (typeof allowed === 'boolean') out[tool] = allowed;
      else
        issues.push({
          path: `${path}.${tool}`,
          message: `expected true or false (got ${describeValue(allowed)})`,
        });
    }
    return out;
  }
  issues.push({
    path,
    message: `expected an object {"tool": true|false} or an array of tool names (got ${describeValue(value)})`,
  });
  return null;
}

/**
 * Edge limits, one per edge: a later entry for the same edge replaces an earlier one (Go keeps
 * them in a map). Both ends must be stages of the workflow: a limit naming an unknown stage is
 * almost always a typo, and would leave the loop it was meant to bound unbounded.
 */
export function normaliseEdgeLimits(
  value: unknown,
  stageNames: ReadonlySet<string>,
  issues: ParamIssue[],
): JeevesEdgeLimit[] {
  if (value === undefined || value === null) return [];
  const found: Array<{ limit: JeevesEdgeLimit; path: string }> = [];
  if (Array.isArray(value)) {
    value.forEach((entry, i) => {
      const limit = edgeLimitFromEntry(entry, `edge_limits[${i}]`, issues);
      if (limit) found.push({ limit, path: `edge_limits[${i}]` });
    });
  } else if (isJsonObject(value)) {
    for (const [key, count] of Object.entries(value)) {
      const path = `edge_limits[${JSON.stringify(key)}]`;
      const arrow = key.indexOf('->');
      const from = arrow === -1 ? '' : key.slice(0, arrow);
      const to = arrow === -1 ? '' : key.slice(arrow + 2);
      if (from === '' || to === '') {
        issues.push({ path, message: `expected a key "from->to" naming two stages` });
        continue;
      }
      const max = maxCount(count, path, issues);
      if (max !== undefined) found.push({ limit: { from, to, max_count: max }, path });
    }
  } else {
    issues.push({
      path: 'edge_limits',
      message: `expected an array of {from, to, max_count} or an object {"from->to": max_count} (got ${describeValue(value)})`,
    });
    return [];
  }

  const byEdge = new Map<string, JeevesEdgeLimit>();
  for (const { limit, path } of found) {
    let ok = true;
    for (const end of ['from', 'to'] as const) {
      const name = limit[end];
      if (name === END) {
        issues.push({
          path,
          message: `edges ${end === 'to' ? 'to' : 'from'} '${END}' are never traversed as limited edges, so this limit would never apply; remove it`,
        });
        ok = false;
      } else if (!stageNames.has(name)) {
        issues.push({
          path,
          message: `${end}: unknown stage '${name}' (expected one of: ${[...stageNames].join(', ')})`,
        });
        ok = false;
      }
    }
    if (ok) byEdge.set(`${limit.from}->${limit.to}`, limit);
  }
  return [...byEdge.values()];
}

function edgeLimitFromEntry(
  entry: unknown,
  path: string,
  issues: ParamIssue[],
): JeevesEdgeLimit | undefined {
  if (!isJsonObject(entry)) {
    issues.push({ path, message: `expected {from, to, max_count} (got ${describeValue(entry)})` });
    return undefined;
  }
  const from = endOf(entry, 'from', path, issues);
  const to = endOf(entry, 'to', path, issues);
  const max = maxCount(entry.max_count, `${path}.max_count`, issues);
  return from === undefined || to === undefined || max === undefined
    ? undefined
    : { from, to, max_count: max };
}

/** `from` (or `from_stage`), `to` (or `to_stage`): a non-empty string, one spelling or agreeing. */
function endOf(
  entry: Record<string, unknown>,
  key: 'from' | 'to',
  path: string,
  issues: ParamIssue[],
): string | undefined {
  const alias = `${key}_stage`;
  const spellings: string[] = [];
  for (const k of [key, alias]) {
    const v = entry[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') {
      issues.push({
        path: `${path}.${k}`,
        message: `expected a stage name (got ${describeValue(v)})`,
      });
      return undefined;
    }
    spellings.push(v);
  }
  const [name, other] = spellings;
  if (other !== undefined && other !== name) {
    issues.push({
      path,
      message: `${key} '${name}' and ${alias} '${other}' disagree; give one of them`,
    });
    return undefined;
  }
  if (name === undefined || name === '') {
    issues.push({ path: `${path}.${key}`, message: `expected a stage name (${key} or ${alias})` });
    return undefined;
  }
  return name;
}

/** An integer; null or absent is 0 (unlimited), as Go decodes it. */
function maxCount(value: unknown, path: string, issues: ParamIssue[]): number | undefined {
  if (value === undefined || value === null) return 0;
  if (Number.isSafeInteger(value)) return value as number;
  issues.push({ path, message: `expected an integer max_count (got ${describeValue(value)})` });
  return undefined;
}
