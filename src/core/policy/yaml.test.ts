import { policySetTextToParts, policyToJson } from '@cedar-policy/cedar-wasm/nodejs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError, type WardenError } from '../errors.ts';
import { cedarLike, cedarString, WILDCARD } from './cedar-text.ts';
import { compileYamlPolicy } from './yaml.ts';

/** The policies of compiled Cedar text, by @id, as Cedar's JSON form. */
function policies(cedar: string): Map<string, Record<string, unknown>> {
  const parts = policySetTextToParts(cedar);
  if (parts.type !== 'success') throw new Error(JSON.stringify(parts.errors));
  const out = new Map<string, Record<string, unknown>>();
  for (const text of parts.policies) {
    const json = policyToJson(text);
    if (json.type !== 'success') throw new Error(JSON.stringify(json.errors));
    out.set(json.json.annotations!.id!, json.json as unknown as Record<string, unknown>);
  }
  return out;
}

function invalid(text: string, file?: string, baseDir?: string): WardenError {
  try {
    compileYamlPolicy(text, file, { baseDir });
  } catch (e) {
    if (isWardenError(e, 'POLICY_INVALID')) return e;
    throw e;
  }
  throw new Error('expected POLICY_INVALID');
}

/** Every string Cedar literal found in a policy JSON. */
function literals(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) literals(v, out);
  else if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record.Value === 'string') out.push(record.Value);
    if (typeof record.id === 'string') out.push(record.id);
    if (Array.isArray(record.pattern))
      out.push(
        record.pattern
          .map((p: unknown) => (p === 'Wildcard' ? '\u0000*' : (p as { Literal: string }).Literal))
          .join(''),
      );
    for (const v of Object.values(record)) literals(v, out);
  }
  return out;
}

const FULL = `
version: 1
agents:
  research/search:
    trust: act-with-approval
    tools: [web_search, "mcp.github.*"]
    ask: [mcp.github.create_issue, fs.write]
    urls: ["example.com", "*.wikipedia.org", "https://api.example.com:8443/v1/"]
    files: { read: [data, /etc/ssl], write: [out] }
    commands: ["git status"]
    max_command_risk: high
    kv: { read: [notes], write: ["notes/today"] }
    lanes: [default]
    workflows: [report]
    budget: { max_tool_calls: 10, max_http_bytes: 1000000 }
  research:
    trust: suggest
  "*":
    trust: observe
skills:
  fetcher:
    urls: ["https://api.example.com"]
tokens:
  tok_ci: { allow_methods: ["session.*"], deny_methods: [session.delete] }
secrets:
  GITHUB_TOKEN: { agents: [research/search, "skill:fetcher"] }
`;

describe('compileYamlPolicy', () => {
  it('compiles every section to Cedar policies named after their YAML keys', () => {
    const out = compileYamlPolicy(FULL, 'policy.yaml', { baseDir: '/home/w' });
    // policySetTextToParts sorts: compare as sets.
    const ids = [...policies(out.cedar).keys()].sort();
    expect(ids).toEqual(
      [
        'yaml:agents.research/search.tools',
        'yaml:agents.research/search.ask',
        'yaml:agents.research/search.urls',
        'yaml:agents.research/search.files.read',
        'yaml:agents.research/search.files.write (ask)',
        'yaml:agents.research/search.commands',
        'yaml:agents.research/search.kv.read',
        'yaml:agents.research/search.kv.write',
        'yaml:agents.research/search.lanes',
        'yaml:agents.research/search.workflows',
        'yaml:agents.research/search.max_command_risk',
        'yaml:agents.research/search.budget.max_tool_calls',
        'yaml:agents.research/search.budget.max_http_bytes',
        'yaml:skills.fetcher.urls',
        'yaml:tokens.tok_ci.allow_methods',
        'yaml:tokens.tok_ci.deny_methods',
        'yaml:secrets.GITHUB_TOKEN.agents[0]',
        'yaml:secrets.GITHUB_TOKEN.agents[1]',
      ].sort(),
    );
    expect(out.cedar.indexOf('yaml:agents.research/search.tools')).toBeLessThan(
      out.cedar.indexOf('yaml:secrets.GITHUB_TOKEN.agents[1]'),
    );
    expect(out.trust).toEqual({
      'agent:research/search': 'act-with-approval',
      'agent:research/*': 'suggest',
      'agent:*': 'observe',
    });
    expect(out.mode).toBe('enforce');
    expect(out.modeSet).toBe(false);
    expect(out.lines['yaml:agents.research/search.tools']).toBe(6);
    expect(out.lines['yaml:agents.research/search.files.write (ask)']).toBe(9);
  });

  it('marks ask policies with @decision("ask") and resolves relative roots', () => {
    const out = policies(compileYamlPolicy(FULL, 'policy.yaml', { baseDir: '/home/w' }).cedar);
    const ask = out.get('yaml:agents.research/search.ask')!;
    expect((ask.annotations as Record<string, string>).decision).toBe('ask');
    expect(out.get('yaml:agents.research/search.tools')!.annotations as object).not.toHaveProperty(
      'decision',
    );
    const write = out.get('yaml:agents.research/search.files.write (ask)')!;
    expect((write.annotations as Record<string, string>).decision).toBe('ask');
    expect(literals(write)).toContain('/home/w/out');
    expect(literals(out.get('yaml:agents.research/search.files.read'))).toEqual(
      expect.arrayContaining(['/home/w/data', '/home/w/data/\u0000*', '/etc/ssl']),
    );
    const risk = out.get('yaml:agents.research/search.max_command_risk')!;
    expect(risk.effect).toBe('forbid');
    expect(literals(risk)).toEqual(expect.arrayContaining(['low', 'medium', 'high']));
    expect(literals(risk)).not.toContain('critical');
  });

  it('names policies of other files after the file', () => {
    const out = compileYamlPolicy(
      'version: 1\nagents:\n  a/b: { tools: [x] }\n',
      'policies/extra.yaml',
    );
    expect([...policies(out.cedar).keys()]).toEqual(['policies/extra.yaml:agents.a/b.tools']);
  });

  it('compiles "*" entries: any tool, any host, any command, any key', () => {
    const out = compileYamlPolicy(
      'version: 1\nagents:\n  "*": { tools: ["*"], urls: ["*", "https://*/v1"], commands: ["*"], kv: { read: ["*"] } }\n',
    );
    const parsed = policies(out.cedar);
    expect(parsed.get('yaml:agents.*.tools')!.conditions).toEqual([]);
    expect(parsed.get('yaml:agents.*.commands')!.conditions).toEqual([]);
    expect(JSON.stringify(parsed.get('yaml:agents.*.urls'))).not.toContain('"host"');
    expect(parsed.get('yaml:agents.*.tools')!.principal).toEqual({
      op: 'is',
      entity_type: 'Agent',
    });
  });

  it('treats "wf" and "wf/*" as the same principals', () => {
    const e = invalid('version: 1\nagents:\n  wf: { tools: [a] }\n  wf/*: { tools: [b] }\n');
    expect(e.message).toContain('agents.wf/*: the same principals as another key (agent:wf/*)');
  });

  it('reports audit mode with a warning', () => {
    const out = compileYamlPolicy('version: 1\nmode: audit\n');
    expect(out.mode).toBe('audit');
    expect(out.modeSet).toBe(true);
    expect(out.warnings).toEqual([
      'policy.yaml sets mode: audit: every decision is allowed and only audited',
    ]);
    expect(out.cedar).toBe('');
  });

  it('warns about a rule that allows nothing', () => {
    const out = compileYamlPolicy('version: 1\nagents:\n  a/b: {}\n');
    expect(out.warnings[0]).toContain('agents.a/b allows nothing');
  });

  it.each([
    ['version: 2\n', 'policy.yaml:1: version: expected 1 (the policy format version) (got 2)'],
    [
      'agents: {}\n',
      'policy.yaml:1: version: expected 1 (the policy format version) (got undefined)',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    tols: [x]\n',
      "policy.yaml:4: agents.a/b: unknown key 'tols' (known keys: trust, tools, ask, urls,",
    ],
    [
      'version: 1\nagents:\n  a/b:\n    tools: web\n',
      'policy.yaml:4: agents.a/b.tools: expected a list of tool names (got "web")',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    trust: admin\n',
      "agents.a/b.trust: expected one of 'observe', 'suggest', 'act-with-approval', 'act' (got \"admin\")",
    ],
    [
      'version: 1\nagents:\n  a/b:\n    budget: { max_tool_calls: 0 }\n',
      'agents.a/b.budget.max_tool_calls: expected a positive integer (max_tool_calls) (got 0)',
    ],
    [
      'version: 1\nagents:\n  a/b/c: { tools: [x] }\n',
      'policy.yaml:3: agents.a/b/c: expected "<workflow>/<stage>", "<workflow>", "<workflow>/*" or "*"',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    urls: ["ftp://x.org"]\n',
      'policy.yaml:4: agents.a/b.urls[0]: expected scheme http or https (got "ftp")',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    urls: ["exa mple.com"]\n',
      'agents.a/b.urls[0]: expected a host name or IP address',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    urls: ["a.*.com"]\n',
      'agents.a/b.urls[0]: expected a host, "*.<domain>" or "*"',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    urls: ["example.com:99999"]\n',
      'agents.a/b.urls[0]: expected a port from 1 to 65535 (got 99999)\n',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    files: { read: [data] }\n',
      'agents.a/b.files.read[0]: expected an absolute path (a relative root needs the policy directory',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    tools: ["a*b"]\n',
      'agents.a/b.tools[0]: expected a tool name, "<prefix>.*" or "*"',
    ],
    [
      'version: 1\nagents:\n  a/b:\n    commands: ["git\\nstatus"]\n',
      'agents.a/b.commands[0]: expected a command prefix without control characters',
    ],
    [
      'version: 1\nsecrets:\n  bad-name: { agents: ["*"] }\n',
      'secrets.bad-name: expected a secret name of letters, digits and _',
    ],
    ['version: 1\nagents: [\n', 'policy.yaml:3: (document): '],
  ])('refuses %j', (text, message) => {
    const e = invalid(text);
    expect(e.message).toContain(message);
    expect(e.message).toContain('the previous policy stays active');
    expect(e.details).toMatchObject({ file: 'policy.yaml' });
  });

  it('lists every problem at once', () => {
    const e = invalid(
      'version: 1\nagents:\n  a/b:\n    urls: ["ftp://x", "ok.com", "*x"]\n    tools: ["*a"]\n',
    );
    const issues = (e.details as { issues: { path: string }[] }).issues.map((i) => i.path);
    expect(issues).toEqual(['agents.a/b.tools[0]', 'agents.a/b.urls[0]', 'agents.a/b.urls[2]']);
  });
});

describe('hostile names', () => {
  const hostile = [
    'a"b',
    'back\\slash',
    'new\nline',
    'star*',
    'quote"\\"',
    '\u2028',
    'tab\there',
    '"); permit(principal, action, resource); //',
  ];

  it.each(hostile.filter((h) => !/[\n\t]/.test(h)))('keeps %j data in every position', (h) => {
    const k = h.replace(/[*/]/g, '');
    const text = `version: 1
agents:
  ${JSON.stringify(`w${k}/s${k}`)}:
    tools: [${JSON.stringify(`t${h}`.replace(/\*/g, ''))}]
    commands: [${JSON.stringify(`echo ${h}`)}]
    urls: [${JSON.stringify(`https://example.com/p${h}`)}]
    files: { read: [${JSON.stringify(`/data/${k}`)}] }
tokens:
  ${JSON.stringify(`tok${h.replace(/\*/g, '')}`)}: { allow_methods: [${JSON.stringify(`m${h.replace(/\*/g, '')}`)}] }
`;
    const out = compileYamlPolicy(text);
    const parsed = policies(out.cedar);
    // Exactly the policies generated: an injected `permit` would be an extra one.
    expect(parsed.size).toBe(6);
    const all = [...parsed.values()].flatMap((p) => literals(p));
    expect(all).toContain(`w${k}/s${k}`);
    expect(all).toContain(`echo ${h}`);
    expect(all).toContain(`echo ${h} \u0000*`);
    expect(all).toContain(`/data/${k}`);
  });

  it('refuses control characters in names', () => {
    expect(invalid('version: 1\nagents:\n  "a\\nb/c": { tools: [x] }\n').message).toContain(
      'without control characters',
    );
  });

  it('cedarString round-trips any string through Cedar', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        const json = policyToJson(
          `permit(principal, action, resource) when { context.x == ${cedarString(s)} };`,
        );
        expect(json.type).toBe('success');
        expect(literals(json.type === 'success' ? json.json : null)).toContain(s);
      }),
      { numRuns: 200 },
    );
  });

  it('cedarLike escapes * and keeps wildcards', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !/\p{Cs}/u.test(s)),
        (s) => {
          const pattern = cedarLike([s, WILDCARD]);
          const json = policyToJson(
            `permit(principal, action, resource) when { context.x like ${pattern} };`,
          );
          expect(json.type).toBe('success');
          expect(literals(json.type === 'success' ? json.json : null)).toContain(`${s}\u0000*`);
        },
      ),
      { numRuns: 200 },
    );
  });
});
