import { describe, expect, it } from 'vitest';

import { newEnvelope } from './envelope.ts';
import { parseTemplate, renderTemplate, templateProblems } from './template.ts';

const KEYS = new Set(['extract', 'review']);

function envelope() {
  const env = newEnvelope({ payee: 'ACME', items: ['a', 'b'], n: 0, flag: false }, 'extract', {
    tier: 'gold',
  });
  env.outputs = { extract: { amount: 12.5, nested: { x: [1, 2] } }, review: 'fine' };
  env.state = { count: 3 };
  env.last_interrupt = {
    id: 'i',
    kind: 'clarification',
    stage: 's',
    response: { text: 'yes please' },
  };
  return env;
}

describe('parseTemplate', () => {
  it('splits text and placeholders, tolerating spaces inside the braces', () => {
    expect(parseTemplate('Pay {{ outputs.extract.amount }} to {{input.payee}}.').parts).toEqual([
      { kind: 'text', text: 'Pay ' },
      {
        kind: 'ref',
        source: '{{ outputs.extract.amount }}',
        root: 'outputs',
        keys: ['extract', 'amount'],
      },
      { kind: 'text', text: ' to ' },
      { kind: 'ref', source: '{{input.payee}}', root: 'input', keys: ['payee'] },
      { kind: 'text', text: '.' },
    ]);
  });

  it('a text without placeholders is one part, and single braces are text', () => {
    const text = 'Answer {"verdict": "approve"} } {';
    expect(parseTemplate(text)).toEqual({ parts: [{ kind: 'text', text }], problems: [] });
    expect(parseTemplate('')).toEqual({ parts: [], problems: [] });
  });

  it.each([
    ['an unterminated {{', 'Hello {{input.name', /unterminated '\{\{' at character 7/],
    ['an empty placeholder', 'a {{ }} b', /^\{\{ \}\} at character 3 is not a placeholder/],
    ['a space inside the path', '{{input.first name}}', /is not a placeholder/],
    ['an empty key', '{{input..x}}', /is not a placeholder/],
    ['a trailing dot', '{{input.x.}}', /is not a placeholder/],
    ['triple braces', '{{{input.x}}}', /is not a placeholder/],
    ['a nested opening', '{{ {{input.x}} }}', /is not a placeholder/],
  ])('reports %s and keeps it as text', (_, text, message) => {
    const parsed = parseTemplate(text);
    expect(parsed.problems).toHaveLength(1);
    expect(parsed.problems[0]!.message).toMatch(message);
    expect(renderTemplate(parsed, envelope())).toContain('{{');
  });
});

describe('templateProblems', () => {
  it('accepts every root, whole roots, and outputs of known keys', () => {
    const ok =
      '{{input}} {{input.items.0}} {{outputs}} {{outputs.extract.amount}} {{outputs.review}} ' +
      '{{state.count}} {{metadata.tier}} {{interrupt.text}} {{ interrupt }}';
    expect(templateProblems(ok, KEYS)).toEqual([]);
  });

  it('rejects a root that is not input, outputs, state, metadata or interrupt', () => {
    const [problem, ...rest] = templateProblems('{{secrets.key}}', KEYS);
    expect(rest).toEqual([]);
    expect(problem!.message).toBe(
      "{{secrets.key}} uses unknown root 'secrets': expected one of input, outputs, state, metadata, interrupt",
    );
  });

  it("points `output` (the routing root) at the stage's output key", () => {
    expect(templateProblems('{{output.amount}}', KEYS)[0]!.message).toMatch(
      /unknown root 'output'.*outputs\.<its output key>/,
    );
  });

  it('rejects an output key no stage has, listing the keys that exist', () => {
    expect(templateProblems('{{ outputs.extrakt.amount }}', KEYS)).toEqual([
      {
        offset: 0,
        message:
          "{{ outputs.extrakt.amount }} names output key 'extrakt', which no stage has (output keys: extract, review)",
      },
    ]);
  });

  it('reports every problem in the order they appear', () => {
    const problems = templateProblems('{{nope}} {{outputs.zz}} {{input.x', KEYS);
    expect(problems.map((p) => p.offset)).toEqual([0, 9, 24]);
    expect(problems[2]!.message).toMatch(/unterminated/);
  });
});

describe('renderTemplate', () => {
  it('inserts strings as is, other values as JSON, missing and null as nothing', () => {
    const env = envelope();
    expect(
      renderTemplate(
        'Pay {{outputs.extract.amount}} to {{input.payee}} ({{metadata.tier}}, {{state.count}})',
        env,
      ),
    ).toBe('Pay 12.5 to ACME (gold, 3)');
    expect(renderTemplate('{{outputs.extract.nested}} {{input.items.1}}', env)).toBe(
      '{"x":[1,2]} b',
    );
    expect(renderTemplate('[{{input.n}}|{{input.flag}}|{{input.none}}]', env)).toBe('[0|false|]');
    expect(renderTemplate('{{interrupt.text}}', env)).toBe('yes please');
  });

  it('renders nothing for an unknown root or an inherited property', () => {
    const env = envelope();
    expect(renderTemplate('[{{secrets.x}}|{{input.toString}}|{{input.constructor}}]', env)).toBe(
      '[||]',
    );
  });

  it('renders the interrupt root as nothing before any interrupt was answered', () => {
    const env = newEnvelope(null, 'a');
    expect(renderTemplate('[{{interrupt.text}}|{{input}}]', env)).toBe('[|]');
  });

  it('inserts values verbatim: escaping for a terminal is the display’s job', () => {
    const env = newEnvelope({ name: '\u001b[2J{{input.name}}' }, 'a');
    // Substituted text is never parsed again.
    expect(renderTemplate('hi {{input.name}}', env)).toBe('hi \u001b[2J{{input.name}}');
  });
});
