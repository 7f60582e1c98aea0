import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import {
  type DecisionRequest,
  type GrantRecord,
  isWardenError,
  POLICY_ACTIONS,
  type WardenError,
} from '../src/core/index.ts';
import {
  InMemoryGrantIndex,
  PolicyDecisionPoint,
  type PolicyDecisionPointOptions,
  readPolicyFiles,
} from '../src/security/index.ts';
import { liveSets } from '../src/security/policy/cedar.ts';

const METHODS = {
  'session.list': 'read',
  'session.create': 'write',
  'session.delete': 'write',
  'admin.shutdown': 'admin',
  'interrupt.resolve': 'approvals',
  'task.complete': 'worker',
} as const;

const open: PolicyDecisionPoint[] = [];
afterEach(() => {
  for (const pdp of open.splice(0)) pdp.close();
});

function pdpWith(
  files: Record<string, string> = {},
  options: PolicyDecisionPointOptions = {},
): PolicyDecisionPoint {
  const pdp = new PolicyDecisionPoint({ methodScopes: METHODS, ...options });
  open.push(pdp);
  if (Object.keys(files).length > 0) pdp.activate(pdp.load(files, { baseDir: '/home/w' }));
  return pdp;
}

const yaml = (body: string) => ({ 'policy.yaml': `version: 1\n${body}` });

function decide(
  pdp: PolicyDecisionPoint,
  principal: string,
  action: string,
  resource: string,
  context?: Record<string, unknown>,
) {
  return pdp.decide({ principal, action, resource, ...(context ? { context } : {}) });
}

function thrown(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (e) {
    if (isWardenError(e)) return e;
    throw e;
  }
  throw new Error('expected a WardenError');
}

const AGENT = 'agent:research/search';

describe('default deny', () => {
  it('denies every capability with no policy file, naming the request', () => {
    const pdp = pdpWith();
    expect(pdp.version).toBe(createHash('sha256').update('{}').digest('hex'));
    const cases: [string, string][] = [
      ['tool.call', 'tool:web_search'],
      ['http.request', 'url:https://example.com/'],
      ['fs.read', 'path:/etc/passwd'],
      ['fs.write', 'path:/tmp/x'],
      ['fs.list', 'path:/'],
      ['shell.exec', 'command:ls'],
      ['kv.get', 'kv:notes/a'],
      ['kv.set', 'kv:notes/a'],
      ['task.submit', 'lane:default'],
      ['run.spawn', 'workflow:report'],
      ['secret.use', 'secret:GITHUB_TOKEN'],
      ['acp:session.list', 'method:session.list'],
    ];
    for (const [action, resource] of cases) {
      const r = decide(pdp, AGENT, action, resource, { risk: 'low' });
      expect(r).toMatchObject({
        decision: 'deny',
        decided: 'deny',
        mode: 'enforce',
        cached: false,
      });
      expect(r.reasons).toEqual([
        `default deny: no policy allows ${action} on ${resource} for ${AGENT}`,
      ]);
      expect(r.policy_version).toBe(pdp.version);
    }
  });

  it('denies random requests with no policy (property)', () => {
    const pdp = pdpWith();
    const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 });
    const principal = fc.oneof(
      fc
        .tuple(fc.constantFrom('agent', 'skill', 'user', 'attempt'), name)
        .map(([t, n]) => `${t}:${n}`),
      fc.tuple(name, name).map(([t, n]) => `${t}:${n}`),
      name,
    );
    const action = fc.oneof(
      fc.constantFrom(...POLICY_ACTIONS),
      name.map((n) => `acp:${n}`),
      name,
    );
    const resource = fc.oneof(
      fc
        .tuple(
          fc.constantFrom(
            'tool',
            'url',
            'path',
            'command',
            'kv',
            'lane',
            'workflow',
            'method',
            'secret',
          ),
          name,
        )
        .map(([t, n]) => `${t}:${n}`),
      fc.webUrl().map((u) => `url:${u}`),
      name,
    );
    // A context may even carry a forged grant: the PDP drops it.
    const context = fc.option(
      fc.record(
        {
          grant: fc.constant({ id: 'forged', ask: false }),
          risk: fc.constantFrom('low', 'high'),
          extra: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    );
    fc.assert(
      fc.property(principal, action, resource, context, (p, a, r, c) => {
        const result = pdp.decide({
          principal: p,
          action: a,
          resource: r,
          ...(c ? { context: c } : {}),
        });
        expect(result.decision).toBe('deny');
        expect(result.grant_id).toBeUndefined();
      }),
      { numRuns: 400 },
    );
  });

  it('keeps the built-ins: token scopes, admin, attempts on their own task', () => {
    const pdp = pdpWith();
    const call = (
      principal: string,
      method: string,
      scopes?: string[],
      context?: Record<string, unknown>,
    ) =>
      pdp.decide({
        principal,
        action: `acp:${method}`,
        resource: `method:${method}`,
        scopes,
        context,
      }).decision;
    expect(call('token:t1', 'session.list', ['read'])).toBe('allow');
    expect(call('token:t1', 'session.create', ['read'])).toBe('deny');
    expect(call('token:t1', 'session.create', ['write'])).toBe('allow');
    expect(call('token:t1', 'interrupt.resolve', ['approvals'])).toBe('allow');
    expect(call('token:t1', 'admin.shutdown', ['read', 'write', 'approvals'])).toBe('deny');
    expect(call('token:t1', 'admin.shutdown', ['admin'])).toBe('allow');
    expect(call('token:t1', 'unknown.method', ['admin'])).toBe('allow');
    expect(call('token:admin', 'admin.shutdown')).toBe('allow');
    expect(call('token:t1', 'session.list')).toBe('deny');
    expect(call('attempt:task_1', 'task.complete', undefined, { task_id: 'task_1' })).toBe('allow');
    expect(call('attempt:task_1', 'task.complete', undefined, { task_id: 'task_2' })).toBe('deny');
    expect(call('attempt:task_1', 'task.complete')).toBe('deny');
    expect(call('attempt:task_1', 'session.list', undefined, { task_id: 'task_1' })).toBe('deny');
    expect(call('agent:a/b', 'session.list', ['admin'])).toBe('deny');
  });

  it('denies unknown principal types, actions and malformed resources', () => {
    const pdp = pdpWith(yaml('agents:\n  "*": { tools: ["*"], files: { read: ["/"] } }\n'));
    expect(decide(pdp, 'robot:x', 'tool.call', 'tool:a').reasons[0]).toMatch(
      /^invalid request: unknown principal type 'robot'/,
    );
    expect(decide(pdp, AGENT, 'tool.cal', 'tool:a').reasons[0]).toMatch(
      /^invalid request: unknown action 'tool.cal'/,
    );
    expect(decide(pdp, AGENT, 'tool.call', 'tol:a').reasons[0]).toMatch(
      /unknown resource type 'tol'/,
    );
    expect(decide(pdp, AGENT, 'fs.read', 'path:/data/../etc/passwd').reasons[0]).toMatch(
      /not an absolute, normalised path/,
    );
    expect(decide(pdp, AGENT, 'fs.read', 'path:data').decision).toBe('deny');
    expect(decide(pdp, AGENT, 'fs.read', 'path:/etc/passwd').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'tool.call', 'tool:a').decision).toBe('allow');
    expect(() => pdp.decide({ principal: 1 } as unknown as DecisionRequest)).toThrow(
      /expected \{ principal, action, resource \} strings/,
    );
  });
});

describe('YAML policies', () => {
  const POLICY = yaml(`agents:
  research/search:
    tools: [web_search, "mcp.github.*"]
    ask: [mcp.github.create_issue]
    urls: ["example.com", "*.wikipedia.org", "https://api.example.com:8443/v1", "http://plain.org/a*"]
    files: { read: [data, /etc/ssl], write: [/tmp/out] }
    commands: ["git status", "npm test"]
    kv: { read: [notes], write: [notes/today] }
    lanes: [default]
    workflows: [report]
  research:
    tools: [calculator]
  other/x:
    tools: ["*"]
    commands: ["*"]
    max_command_risk: high
    budget: { max_tool_calls: 3 }
secrets:
  GITHUB_TOKEN: { agents: [research/search] }
`);

  it('allows tools by name and group, and only for the agents named', () => {
    const pdp = pdpWith(POLICY);
    expect(decide(pdp, AGENT, 'tool.call', 'tool:web_search').reasons).toEqual([
      'yaml:agents.research/search.tools',
    ]);
    expect(decide(pdp, AGENT, 'tool.call', 'tool:mcp.github.list_issues').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'tool.call', 'tool:mcp.gitlab.list').decision).toBe('deny');
    expect(decide(pdp, AGENT, 'tool.call', 'tool:calculator').reasons).toEqual([
      'yaml:agents.research.tools',
    ]);
    expect(decide(pdp, 'agent:research/write', 'tool.call', 'tool:calculator').decision).toBe(
      'allow',
    );
    expect(decide(pdp, 'agent:research/write', 'tool.call', 'tool:web_search').decision).toBe(
      'deny',
    );
    expect(decide(pdp, 'agent:other/x', 'tool.call', 'tool:anything').decision).toBe('allow');
    expect(decide(pdp, 'skill:research', 'tool.call', 'tool:calculator').decision).toBe('deny');
  });

  it('asks for tools listed in ask, even when tools also allows them', () => {
    const pdp = pdpWith(POLICY);
    const r = decide(pdp, AGENT, 'tool.call', 'tool:mcp.github.create_issue');
    expect(r).toMatchObject({
      decision: 'ask',
      decided: 'ask',
      reasons: ['yaml:agents.research/search.ask'],
    });
  });

  it('allows URLs by host, subdomain, scheme, port and path prefix', () => {
    const pdp = pdpWith(POLICY);
    const url = (u: string) =>
      decide(pdp, AGENT, 'http.request', `url:${u}`, { method: 'GET' }).decision;
    expect(url('https://example.com/anything?q=1')).toBe('allow');
    expect(url('http://EXAMPLE.com/')).toBe('allow');
    expect(url('https://example.com:8443/')).toBe('deny');
    expect(url('https://sub.example.com/')).toBe('deny');
    expect(url('https://en.wikipedia.org/wiki/X')).toBe('allow');
    expect(url('https://wikipedia.org/')).toBe('deny');
    expect(url('https://evilwikipedia.org/')).toBe('deny');
    expect(url('https://api.example.com:8443/v1')).toBe('allow');
    expect(url('https://api.example.com:8443/v1/users')).toBe('allow');
    expect(url('https://api.example.com:8443/v10')).toBe('deny');
    expect(url('https://api.example.com:8443/v1/../admin')).toBe('deny');
    expect(url('https://api.example.com/v1')).toBe('deny');
    expect(url('http://plain.org/abc')).toBe('allow');
    expect(url('https://plain.org/abc')).toBe('deny');
    expect(url('https://example.com@evil.com/')).toBe('deny');
    expect(url('ftp://example.com/')).toBe('deny');
    expect(url('not a url')).toBe('deny');
  });

  it('allows files under roots only, reads and writes apart', () => {
    const pdp = pdpWith(POLICY);
    expect(decide(pdp, AGENT, 'fs.read', 'path:/home/w/data').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'fs.list', 'path:/home/w/data/sub').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'fs.read', 'path:/home/w/database').decision).toBe('deny');
    expect(decide(pdp, AGENT, 'fs.read', 'path:/etc/ssl/certs/a.pem').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'fs.write', 'path:/etc/ssl/x').decision).toBe('deny');
    expect(decide(pdp, AGENT, 'fs.write', 'path:/tmp/out/report.md').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'fs.read', 'path:/tmp/out/report.md').decision).toBe('deny');
  });

  it('allows simple commands by prefix on word boundaries, within the risk cap', () => {
    const pdp = pdpWith(POLICY);
    const cmd = (c: string, risk?: string) =>
      decide(pdp, AGENT, 'shell.exec', `command:${c}`, risk ? { risk } : {});
    expect(cmd('git status', 'low').decision).toBe('allow');
    expect(cmd('git status --short', 'medium').decision).toBe('allow');
    expect(cmd('git statusx', 'low').decision).toBe('deny');
    expect(cmd('git push', 'low').decision).toBe('deny');
    expect(cmd('git status; rm -rf ~', 'low').decision).toBe('deny');
    expect(cmd('git status && curl x | sh', 'low').decision).toBe('deny');
    expect(cmd('git status $(rm -rf ~)', 'low').decision).toBe('deny');
    expect(cmd('git status\nrm -rf ~', 'low').decision).toBe('deny');
    const high = cmd('npm test', 'high');
    expect(high).toMatchObject({
      decision: 'deny',
      reasons: ['yaml:agents.research/search.max_command_risk'],
    });
    expect(cmd('npm test').reasons).toEqual(['yaml:agents.research/search.max_command_risk']);
    // "*" allows compound commands; max_command_risk: high allows high, never critical.
    expect(
      decide(pdp, 'agent:other/x', 'shell.exec', 'command:a | b', { risk: 'high' }).decision,
    ).toBe('allow');
    expect(
      decide(pdp, 'agent:other/x', 'shell.exec', 'command:a | b', { risk: 'critical' }).decision,
    ).toBe('deny');
  });

  it('covers kv, lanes, workflows, secrets and budget caps', () => {
    const pdp = pdpWith(POLICY);
    expect(decide(pdp, AGENT, 'kv.get', 'kv:notes/anything').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'kv.set', 'kv:notes/anything').decision).toBe('deny');
    expect(decide(pdp, AGENT, 'kv.set', 'kv:notes/today').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'task.submit', 'lane:default').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'task.submit', 'lane:urgent').decision).toBe('deny');
    expect(decide(pdp, AGENT, 'run.spawn', 'workflow:report').decision).toBe('allow');
    expect(decide(pdp, AGENT, 'secret.use', 'secret:GITHUB_TOKEN').decision).toBe('allow');
    expect(decide(pdp, 'agent:research/write', 'secret.use', 'secret:GITHUB_TOKEN').decision).toBe(
      'deny',
    );
    const x = 'agent:other/x';
    expect(decide(pdp, x, 'tool.call', 'tool:a', { usage: { tool_calls: 2 } }).decision).toBe(
      'allow',
    );
    expect(decide(pdp, x, 'tool.call', 'tool:a', { usage: { tool_calls: 3 } })).toMatchObject({
      decision: 'deny',
      reasons: ['yaml:agents.other/x.budget.max_tool_calls'],
    });
  });

  it('resolves relative roots of policies/*.yaml against their own directory', () => {
    const pdp = pdpWith({
      'policies/team.yaml': 'version: 1\nagents:\n  a/b: { files: { read: [shared] } }\n',
    });
    expect(decide(pdp, 'agent:a/b', 'fs.read', 'path:/home/w/policies/shared/x').reasons).toEqual([
      'policies/team.yaml:agents.a/b.files.read',
    ]);
  });

  it('lets tokens be narrowed and widened by method', () => {
    const pdp = pdpWith(
      yaml(
        'tokens:\n  tok_ci: { allow_methods: ["session.*"], deny_methods: [session.delete] }\n  "*": { deny_methods: [admin.shutdown] }\n',
      ),
    );
    const call = (p: string, m: string, scopes: string[]) =>
      pdp.decide({ principal: p, action: `acp:${m}`, resource: `method:${m}`, scopes });
    expect(call('token:tok_ci', 'session.create', []).reasons).toEqual([
      'yaml:tokens.tok_ci.allow_methods',
    ]);
    expect(call('token:tok_ci', 'session.delete', ['write'])).toMatchObject({
      decision: 'deny',
      reasons: ['yaml:tokens.tok_ci.deny_methods'],
    });
    expect(call('token:admin', 'admin.shutdown', []).reasons).toEqual([
      'yaml:tokens.*.deny_methods',
    ]);
  });
});

describe('raw Cedar', () => {
  it('permits and forbids; a forbid beats any permit', () => {
    const pdp = pdpWith({
      ...yaml('agents:\n  research/search: { tools: ["mcp.github.*"] }\n'),
      'policies/a.cedar': `@id("allow-calc")
permit (principal in Workflow::"research", action == Action::"tool.call", resource == Tool::"calc");

// no deleting, whatever else says
forbid (principal, action == Action::"tool.call", resource)
when { resource.name like "*.delete_*" };
`,
    });
    expect(decide(pdp, AGENT, 'tool.call', 'tool:calc').reasons).toEqual(['allow-calc']);
    expect(decide(pdp, AGENT, 'tool.call', 'tool:mcp.github.list').decision).toBe('allow');
    const forbidden = decide(pdp, AGENT, 'tool.call', 'tool:mcp.github.delete_repo');
    expect(forbidden).toMatchObject({ decision: 'deny', reasons: ['policies/a.cedar:5'] });
  });

  it('asks when only @decision("ask") permits match, and denies when a forbid also matches', () => {
    const pdp = pdpWith({
      'x.cedar': `@id("ask-write") @decision("ask")
permit (principal is Agent, action == Action::"fs.write", resource is Path);
@id("allow-tmp")
permit (principal is Agent, action == Action::"fs.write", resource is Path) when { resource.path like "/tmp/*" };
@id("no-etc")
forbid (principal, action, resource is Path) when { resource.path like "/etc/*" };
`,
    });
    expect(decide(pdp, AGENT, 'fs.write', 'path:/home/x')).toMatchObject({
      decision: 'ask',
      reasons: ['ask-write'],
    });
    expect(decide(pdp, AGENT, 'fs.write', 'path:/tmp/x')).toMatchObject({
      decision: 'ask',
      reasons: ['ask-write'],
    });
    expect(decide(pdp, AGENT, 'fs.write', 'path:/etc/x')).toMatchObject({
      decision: 'deny',
      reasons: ['no-etc'],
    });
  });

  it('denies when a forbid or ask policy fails to evaluate; a failing permit grants nothing', () => {
    const pdp = pdpWith({
      'x.cedar': `@id("p") permit (principal, action == Action::"tool.call", resource);
@id("f") forbid (principal, action == Action::"tool.call", resource) when { context.injection > 5 };
@id("bad-permit") permit (principal, action == Action::"kv.get", resource) when { resource.nope == 1 };
`,
    });
    const r = decide(pdp, AGENT, 'tool.call', 'tool:x');
    expect(r.decision).toBe('deny');
    expect(r.reasons[0]).toMatch(
      /^f failed to evaluate \(a forbid or ask policy that fails denies\): .*injection/,
    );
    expect(decide(pdp, AGENT, 'tool.call', 'tool:x', { injection: 1 }).decision).toBe('allow');
    const kv = decide(pdp, AGENT, 'kv.get', 'kv:a/b');
    expect(kv.decision).toBe('deny');
    expect(kv.reasons[0]).toMatch(/^default deny/);
    expect(kv.reasons[1]).toMatch(/^bad-permit failed to evaluate: /);
  });

  it('passes fractions as decimals and integers as longs', () => {
    const pdp = pdpWith({
      'x.cedar': `@id("scored") permit (principal, action == Action::"tool.call", resource)
when { context.score.greaterThan(decimal("0.5")) && context.calls < 10 };`,
    });
    expect(decide(pdp, AGENT, 'tool.call', 'tool:x', { score: 0.75, calls: 3 }).decision).toBe(
      'allow',
    );
    expect(decide(pdp, AGENT, 'tool.call', 'tool:x', { score: 0.25, calls: 3 }).decision).toBe(
      'deny',
    );
    expect(decide(pdp, AGENT, 'tool.call', 'tool:x', { score: 0.75, calls: 10 }).decision).toBe(
      'deny',
    );
  });

  it('explains: every matched policy with its text, including permits a forbid overrode', () => {
    const pdp = pdpWith({
      ...yaml('agents:\n  research/search: { tools: [calc] }\n'),
      'b.cedar': '@id("no-calc")\nforbid (principal, action, resource == Tool::"calc");\n',
    });
    const e = pdp.explain({ principal: AGENT, action: 'tool.call', resource: 'tool:calc' });
    expect(e.result).toMatchObject({ decision: 'deny', reasons: ['no-calc'], cached: false });
    expect(e.matched.map((m) => [m.id, m.effect, m.file, m.line])).toEqual([
      ['yaml:agents.research/search.tools', 'permit', 'policy.yaml', 3],
      ['no-calc', 'forbid', 'b.cedar', 1],
    ]);
    expect(e.matched[1]!.cedar).toContain('forbid (principal, action, resource == Tool::"calc")');
    expect(e.trust).toBe('act');
    expect(e.evaluated).toBeGreaterThan(0);
  });
});

describe('trust levels', () => {
  const POLICY = yaml(`agents:
  "*": { trust: observe, tools: ["*"], files: { read: ["/"], write: ["/"] }, urls: ["*"], lanes: ["*"] }
  wf: { trust: suggest, tools: ["*"], files: { read: ["/"], write: ["/"] }, lanes: ["*"] }
  wf/approve: { trust: act-with-approval, tools: ["*"], files: { read: ["/"], write: ["/"] } }
  wf/act: { trust: act, tools: ["*"] }
`);

  it('observe: reads only (GET requests included)', () => {
    const pdp = pdpWith(POLICY);
    expect(decide(pdp, 'agent:x/y', 'fs.read', 'path:/a').decision).toBe('allow');
    expect(
      decide(pdp, 'agent:x/y', 'http.request', 'url:https://a.org/', { method: 'get' }).decision,
    ).toBe('allow');
    const post = decide(pdp, 'agent:x/y', 'http.request', 'url:https://a.org/', { method: 'POST' });
    expect(post.decision).toBe('deny');
    expect(post.reasons).toEqual([
      'yaml:agents.*.urls',
      'trust: agent:x/y has trust level observe: only read actions are allowed (fs.read, fs.list, kv.get, GET/HEAD http.request, read methods), not http.request',
    ]);
    expect(decide(pdp, 'agent:x/y', 'fs.write', 'path:/a').decision).toBe('deny');
    expect(decide(pdp, 'agent:x/y', 'task.submit', 'lane:a').decision).toBe('deny');
  });

  it('suggest: reads and task.submit', () => {
    const pdp = pdpWith(POLICY);
    expect(decide(pdp, 'agent:wf/s', 'fs.read', 'path:/a').decision).toBe('allow');
    expect(decide(pdp, 'agent:wf/s', 'task.submit', 'lane:a').decision).toBe('allow');
    expect(decide(pdp, 'agent:wf/s', 'tool.call', 'tool:a').reasons.at(-1)).toMatch(
      /trust level suggest/,
    );
    expect(decide(pdp, 'agent:wf/s', 'fs.write', 'path:/a').decision).toBe('deny');
  });

  it('act-with-approval: every non-read action asks', () => {
    const pdp = pdpWith(POLICY);
    expect(decide(pdp, 'agent:wf/approve', 'fs.read', 'path:/a').decision).toBe('allow');
    const r = decide(pdp, 'agent:wf/approve', 'tool.call', 'tool:a');
    expect(r).toMatchObject({ decision: 'ask', decided: 'ask' });
    expect(r.reasons).toContain('yaml:agents.wf/approve.tools');
    expect(r.reasons.at(-1)).toBe(
      'trust: agent:wf/approve has trust level act-with-approval: tool.call needs approval',
    );
  });

  it('act: what the policy decides; trust never widens', () => {
    const pdp = pdpWith(POLICY);
    expect(decide(pdp, 'agent:wf/act', 'tool.call', 'tool:a').decision).toBe('allow');
    expect(decide(pdp, 'agent:wf/act', 'fs.write', 'path:/a').decision).toBe('allow');
    expect(decide(pdp, 'agent:wf/act', 'kv.get', 'kv:a/b').decision).toBe('deny');
    expect(decide(pdp, 'agent:x/y', 'kv.get', 'kv:a/b').decision).toBe('deny');
    expect(
      pdp.explain({ principal: 'agent:wf/act', action: 'fs.read', resource: 'path:/a' }).trust,
    ).toBe('act');
  });
});

describe('grants', () => {
  const NOW = 1_800_000_000_000;
  const grant = (over: Partial<GrantRecord> = {}): GrantRecord => ({
    id: 'grant_1',
    principal: AGENT,
    action: 'http.request',
    resource: 'url:https://api.example.com/*',
    ask: false,
    budget: null,
    used: 0,
    expires_at: null,
    revoked_at: null,
    revoked_by: null,
    revoke_reason: null,
    created_at: NOW - 1000,
    created_by: 'token:admin',
    reason: null,
    ...over,
  });
  const ask = (pdp: PolicyDecisionPoint, resource = 'url:https://api.example.com/v1') =>
    pdp.decide({ principal: AGENT, action: 'http.request', resource }, { now: NOW });

  it('allows what an active grant covers and returns its id', () => {
    const grants = new InMemoryGrantIndex([grant()]);
    const pdp = pdpWith({}, { grants });
    expect(ask(pdp)).toMatchObject({
      decision: 'allow',
      reasons: ['grant grant_1'],
      grant_id: 'grant_1',
      cached: false,
    });
    expect(ask(pdp).cached).toBe(false); // grant decisions are never cached
    expect(ask(pdp, 'url:https://other.example.com/')).toMatchObject({ decision: 'deny' });
    expect(ask(pdp).grant_id).toBe('grant_1');
    expect(
      pdp.decide(
        {
          principal: 'agent:x/y',
          action: 'http.request',
          resource: 'url:https://api.example.com/v1',
        },
        { now: NOW },
      ).decision,
    ).toBe('deny');
  });

  it('asks for a grant with a review gate', () => {
    const pdp = pdpWith({}, { grants: new InMemoryGrantIndex([grant({ ask: true })]) });
    expect(ask(pdp)).toMatchObject({ decision: 'ask', grant_id: 'grant_1' });
    expect(ask(pdp).reasons[0]).toContain('review gate');
  });

  it.each([
    ['expired', { expires_at: NOW }],
    ['revoked', { revoked_at: NOW - 1, revoked_by: 'token:admin' }],
    ['used up', { budget: 3, used: 3 }],
  ])('denies with a grant that is %s', (_, over) => {
    const pdp = pdpWith({}, { grants: new InMemoryGrantIndex([grant(over)]) });
    expect(ask(pdp)).toMatchObject({ decision: 'deny' });
    expect(ask(pdp).grant_id).toBeUndefined();
  });

  it('follows the index as grants change', () => {
    const grants = new InMemoryGrantIndex();
    const pdp = pdpWith({}, { grants });
    expect(ask(pdp).decision).toBe('deny');
    grants.upsert(grant({ budget: 2, used: 1 }));
    expect(ask(pdp).decision).toBe('allow');
    grants.upsert(grant({ budget: 2, used: 2 }));
    expect(ask(pdp).decision).toBe('deny');
    grants.upsert(grant({ id: 'grant_2', expires_at: NOW + 1 }));
    expect(ask(pdp).grant_id).toBe('grant_2');
    expect(grants.remove('grant_2')).toBe(true);
    expect(ask(pdp).decision).toBe('deny');
  });

  it('is not used when the policy allows anyway; forbids and trust still apply', () => {
    const grants = new InMemoryGrantIndex([grant({ ask: true })]);
    const pdp = pdpWith(yaml('agents:\n  research/search: { urls: ["api.example.com"] }\n'), {
      grants,
    });
    expect(ask(pdp)).toMatchObject({
      decision: 'allow',
      reasons: ['yaml:agents.research/search.urls'],
    });
    expect(ask(pdp).grant_id).toBeUndefined();
    const strict = pdpWith(
      {
        ...yaml('agents:\n  research/search: { trust: observe }\n'),
        'no.cedar':
          '@id("no-v2") forbid (principal, action, resource is Url) when { resource.path like "/v2*" };',
      },
      { grants: new InMemoryGrantIndex([grant()]) },
    );
    expect(ask(strict, 'url:https://api.example.com/v2')).toMatchObject({
      decision: 'deny',
      reasons: ['no-v2'],
    });
    const observed = ask(strict);
    expect(observed.decision).toBe('deny');
    expect(observed.reasons[1]).toMatch(/trust level observe/);
  });
});

describe('audit mode', () => {
  it('allows what the policy denied or asked for, keeping the decision', () => {
    const pdp = pdpWith(yaml('mode: audit\nagents:\n  research/search: { ask: [calc] }\n'));
    expect(pdp.mode).toBe('audit');
    const denied = decide(pdp, AGENT, 'tool.call', 'tool:web');
    expect(denied).toMatchObject({ decision: 'allow', decided: 'deny', mode: 'audit' });
    expect(denied.reasons).toEqual([
      `default deny: no policy allows tool.call on tool:web for ${AGENT}`,
      'audit mode: the policy decided deny; allowed and audited',
    ]);
    expect(decide(pdp, AGENT, 'tool.call', 'tool:calc')).toMatchObject({
      decision: 'allow',
      decided: 'ask',
    });
    expect(pdp.policy().warnings).toContain(
      'policy.yaml sets mode: audit: every decision is allowed and only audited',
    );
  });
});

describe('versions', () => {
  it('pins: an old version keeps deciding after a new one is active', () => {
    const pdp = pdpWith(yaml('agents:\n  research/search: { tools: [a] }\n'));
    const v1 = pdp.version;
    pdp.activate(pdp.load(yaml('agents:\n  research/search: { tools: [b] }\n')));
    const v2 = pdp.version;
    expect(v2).not.toBe(v1);
    expect(decide(pdp, AGENT, 'tool.call', 'tool:a').decision).toBe('deny');
    const old = pdp.decide(
      { principal: AGENT, action: 'tool.call', resource: 'tool:a' },
      { version: v1 },
    );
    expect(old).toMatchObject({ decision: 'allow', policy_version: v1 });
    expect(pdp.has(v1)).toBe(true);
  });

  it('evicts beyond retainVersions; an evicted version is NOT_FOUND until retained again', () => {
    const pdp = pdpWith({}, { retainVersions: 2 });
    const files = (n: number) => yaml(`agents:\n  a/b: { tools: [t${n}] }\n`);
    const first = pdp.load(files(1));
    pdp.activate(first);
    pdp.activate(pdp.load(files(2)));
    pdp.activate(pdp.load(files(3)));
    expect(pdp.versions).toHaveLength(2);
    expect(pdp.has(first.version)).toBe(false);
    const e = thrown(() =>
      pdp.decide(
        { principal: 'agent:a/b', action: 'tool.call', resource: 'tool:t1' },
        { version: first.version },
      ),
    );
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('call load() then retain()');
    pdp.retain(pdp.load(first.source));
    expect(
      pdp.decide(
        { principal: 'agent:a/b', action: 'tool.call', resource: 'tool:t1' },
        { version: first.version },
      ).decision,
    ).toBe('allow');
    expect(decide(pdp, 'agent:a/b', 'tool.call', 'tool:t3').decision).toBe('allow'); // still active
  });

  it('computes the version from the files only, the same for the same files', () => {
    const pdp = pdpWith();
    const files = { 'b.cedar': '', 'policy.yaml': 'version: 1\n' };
    const a = pdp.load(files);
    const b = pdp.load({ 'policy.yaml': 'version: 1\n', 'b.cedar': '' });
    expect(a.version).toBe(b.version);
    expect(a.version).toBe(
      createHash('sha256').update('{"b.cedar":"","policy.yaml":"version: 1\\n"}').digest('hex'),
    );
    expect(pdp.load({ ...files, 'b.cedar': ' ' }).version).not.toBe(a.version);
  });

  it.each([
    [
      { 'policy.yaml': 'version: 1\nagents:\n  a/b: { tols: [x] }\n' },
      "policy.yaml:3: agents.a/b: unknown key 'tols'",
    ],
    [
      { 'x.cedar': 'permit(principal, action, resource);\n\npermit(principal, acton, resource);' },
      'x.cedar:3: cedar: ',
    ],
    [{ 'x.cedar': 'permit(principal is Agnet, action, resource);' }, 'unknown entity type Agnet'],
    [
      { 'x.cedar': 'permit(principal, action == Action::"tool.cal", resource);' },
      'unknown action Action::"tool.cal"',
    ],
    [
      { 'x.cedar': 'permit(principal == ?principal, action, resource);' },
      'templates (?principal, ?resource) are not supported',
    ],
    [
      { 'x.cedar': '@decision("ask") forbid(principal, action, resource);' },
      '@decision("ask") is the only decision annotation, and only on permit',
    ],
    [
      {
        'x.cedar': '@id("a") permit(principal, action, resource);',
        'y.cedar': '@id("a") permit(principal, action, resource);',
      },
      'policy id "a" is also used in x.cedar:1',
    ],
    [
      { 'x.cedar': '@id("builtin:grant") permit(principal, action, resource);' },
      'policy id "builtin:grant"',
    ],
    [{ 'x.txt': '' }, 'expected a .yaml, .yml or .cedar file'],
    [
      {
        'a.yaml': 'version: 1\nagents:\n  a/b: { trust: act }\n',
        'b.yaml': 'version: 1\nagents:\n  a/b: { trust: observe }\n',
      },
      'agent:a/b has trust observe here and act in a.yaml',
    ],
  ])('refuses an invalid policy and keeps the active one (%#)', (files, message) => {
    const pdp = pdpWith(yaml('agents:\n  a/b: { tools: [x] }\n'));
    const before = pdp.version;
    const e = thrown(() => pdp.activate(pdp.load(files)));
    expect(e.code).toBe('POLICY_INVALID');
    expect(e.message).toContain(message);
    expect(pdp.version).toBe(before);
    expect(decide(pdp, 'agent:a/b', 'tool.call', 'tool:x').decision).toBe('allow');
  });

  it('refuses to activate anything but what load() returned', () => {
    const pdp = pdpWith();
    const fake = { ...pdp.load({}) };
    expect(thrown(() => pdp.activate(fake)).code).toBe('INVALID_PARAMS');
  });

  it('shows the whole version as Cedar text', () => {
    const pdp = pdpWith(yaml('agents:\n  a/b: { tools: [x] }\n'));
    const text = pdp.policy().cedar;
    expect(text).toContain('// ---- policy.yaml ----');
    expect(text).toContain('// ---- <builtin> ----');
    expect(text).toContain('@id("yaml:agents.a/b.tools")');
  });
});

describe('decision cache', () => {
  it('flags hits, keys on the whole request and stays bounded', () => {
    const pdp = pdpWith(yaml('agents:\n  a/b: { tools: [x] }\n'), { cacheSize: 2 });
    const req = {
      principal: 'agent:a/b',
      action: 'tool.call',
      resource: 'tool:x',
      context: { n: 1 },
    };
    expect(pdp.decide(req).cached).toBe(false);
    const hit = pdp.decide({ ...req, context: { n: 1 } });
    expect(hit).toMatchObject({
      decision: 'allow',
      cached: true,
      reasons: ['yaml:agents.a/b.tools'],
    });
    expect(pdp.decide({ ...req, context: { n: 2 } }).cached).toBe(false);
    expect(pdp.decide({ ...req, context: { n: 3 } }).cached).toBe(false); // evicts n: 1
    expect(pdp.decide(req).cached).toBe(false);
    expect(pdp.decide({ ...req, context: { n: 3 } }).cached).toBe(true);
  });

  it('keeps caches per version', () => {
    const pdp = pdpWith(yaml('agents:\n  a/b: { tools: [x] }\n'));
    const req = { principal: 'agent:a/b', action: 'tool.call', resource: 'tool:x' };
    pdp.decide(req);
    expect(pdp.decide(req).cached).toBe(true);
    pdp.activate(pdp.load(yaml('agents:\n  a/b: { tools: [y] }\n')));
    expect(pdp.decide(req)).toMatchObject({ decision: 'deny', cached: false });
  });

  it('can be turned off', () => {
    const pdp = pdpWith({}, { cacheSize: 0 });
    pdp.decide({ principal: 'agent:a/b', action: 'tool.call', resource: 'tool:x' });
    expect(
      pdp.decide({ principal: 'agent:a/b', action: 'tool.call', resource: 'tool:x' }).cached,
    ).toBe(false);
  });
});

describe('hostile requests', () => {
  const pdp = () =>
    pdpWith(
      yaml('agents:\n  "*": { tools: ["*"], commands: ["echo"], files: { read: ["/data"] } }\n'),
    );

  it('denies oversized, too deep, cyclic or reserved-key contexts', () => {
    const p = pdp();
    const base = { principal: AGENT, action: 'tool.call', resource: 'tool:x' };
    expect(p.decide({ ...base, context: { big: 'x'.repeat(70_000) } }).reasons[0]).toBe(
      'invalid request: larger than 65536 bytes of JSON',
    );
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) deep = { deep };
    expect(p.decide({ ...base, context: deep }).reasons[0]).toMatch(/nested deeper than 32/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(p.decide({ ...base, context: cyclic }).decision).toBe('deny');
    expect(
      p.decide({ ...base, context: { x: { __entity: { type: 'Agent', id: 'admin' } } } })
        .reasons[0],
    ).toMatch(/reserved key/);
    expect(p.decide({ ...base, context: { f: 0.25, n: null, big: 2 ** 60 } }).reasons[0]).toMatch(
      /not a number Cedar can hold/,
    );
    expect(
      p.decide({ ...base, context: { f: 0.25, n: null, list: [1, 'a', true] } }).decision,
    ).toBe('allow');
    expect(p.decide({ ...base, resource: 'tool:\ud800' }).decision).toBe('deny');
    // NaN would be written as null in a cache key: it must not reuse null's cached allow.
    expect(p.decide({ ...base, context: { x: null } })).toMatchObject({ decision: 'allow' });
    expect(p.decide({ ...base, context: { x: Number.NaN } }).reasons[0]).toBe(
      'invalid request: context.x: NaN is not a number Cedar can hold',
    );
    expect(p.decide({ ...base, context: { m: new Map([['a', 1]]) } }).reasons[0]).toBe(
      'invalid request: context.m: a Map is not plain data',
    );
    expect(
      p.decide({ ...base, context: { at: new Date(0), o: Object.create(null) } }).decision,
    ).toBe('allow');
    expect(p.decide({ ...base, context: { a: [1, () => 1] } }).reasons[0]).toBe(
      'invalid request: context.a[1]: a function is not a context value',
    );
    expect(p.decide(base).decision).toBe('allow');
  });

  it('treats quotes, backslashes, newlines and * in names as data', () => {
    const p = pdp();
    for (const evil of [
      'a"b',
      'a\\"b',
      'x\n"); permit(principal,action,resource); //',
      '*',
      '\\*',
    ]) {
      expect(
        p.decide({
          principal: AGENT,
          action: 'shell.exec',
          resource: `command:echo ${evil}`,
          context: { risk: 'low' },
        }).decision,
      ).toBe(/[\n\\]/.test(evil) ? 'deny' : 'allow');
      // `//` is not a normalised path: refused whatever the policy says.
      expect(
        p.decide({ principal: AGENT, action: 'fs.read', resource: `path:/data/${evil}` }).decision,
      ).toBe(evil.includes('//') ? 'deny' : 'allow');
      expect(
        p.decide({ principal: `agent:${evil}`, action: 'kv.get', resource: `kv:a/${evil}` })
          .decision,
      ).toBe('deny');
      expect(
        p.decide({ principal: `agent:${evil}`, action: 'tool.call', resource: `tool:${evil}` })
          .decision,
      ).toBe('allow');
    }
    expect(
      p.decide({ principal: AGENT, action: 'fs.read', resource: 'path:/data*' }).decision,
    ).toBe('deny');
    expect(p.decide({ principal: AGENT, action: 'fs.read', resource: 'path:/dat*' }).decision).toBe(
      'deny',
    );
  });
});

describe('memory', () => {
  it('releases pre-parsed Cedar sets on close and on eviction', () => {
    const before = liveSets();
    const pdp = new PolicyDecisionPoint({ retainVersions: 1 });
    pdp.activate(
      pdp.load({ 'x.cedar': '@id("a") permit(principal == Agent::"u/v", action, resource);' }),
    );
    decide(pdp, 'agent:u/v', 'tool.call', 'tool:x');
    decide(pdp, 'agent:w/x', 'tool.call', 'tool:x');
    expect(liveSets()).toBe(before + 2);
    pdp.activate(pdp.load({}));
    expect(liveSets()).toBe(before);
    decide(pdp, 'agent:u/v', 'tool.call', 'tool:x');
    expect(liveSets()).toBe(before + 1);
    pdp.close();
    expect(liveSets()).toBe(before);
  });
});

describe('readPolicyFiles', () => {
  it('reads policy.yaml and policies/*.cedar|*.yaml|*.yml, sorted; nothing else', () => {
    const home = mkdtempSync(join(tmpdir(), 'warden-policy-'));
    try {
      expect(readPolicyFiles(home)).toEqual({});
      writeFileSync(join(home, 'policy.yaml'), 'version: 1\n');
      mkdirSync(join(home, 'policies'));
      writeFileSync(join(home, 'policies', 'b.cedar'), 'permit(principal, action, resource);');
      writeFileSync(join(home, 'policies', 'a.yml'), 'version: 1\n');
      writeFileSync(join(home, 'policies', 'README.md'), '# notes');
      mkdirSync(join(home, 'policies', 'sub.cedar'));
      const files = readPolicyFiles(home);
      expect(Object.keys(files)).toEqual(['policy.yaml', 'policies/a.yml', 'policies/b.cedar']);
      expect(files['policies/b.cedar']).toBe('permit(principal, action, resource);');
      const pdp = pdpWith();
      expect(
        pdp.load(files, { baseDir: home }).policies.some((p) => p.file === 'policies/b.cedar'),
      ).toBe(true);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
