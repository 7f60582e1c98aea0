/**
 * Templates in workflow text: `llm` `prompt` and `system`, and interrupt `prompt`.
 *
 * A placeholder is `{{ root.key.key }}`: a root from {@link TEMPLATE_ROOTS}, then dot-separated
 * keys (array elements by index, `items.0`), with optional spaces inside the braces. `{{`
 * always opens a placeholder; text outside placeholders is kept as is. Rendering inserts a
 * string as is, any other value as JSON, and a missing or `null` value as the empty string.
 *
 * One implementation for everything that renders (the llm agent, the machine raising an
 * interrupt) and everything that checks (`validate.ts` at load). Pure: no I/O.
 */
import { readPath } from '../json.ts';
import type { Envelope } from './envelope.ts';

/** The roots a placeholder may start with, in the order the docs list them. */
export const TEMPLATE_ROOTS = ['input', 'outputs', 'state', 'metadata', 'interrupt'] as const;
export type TemplateRoot = (typeof TEMPLATE_ROOTS)[number];

export type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  | {
      readonly kind: 'ref';
      /** The whole placeholder as written, braces included. */
      readonly source: string;
      readonly root: string;
      /** The keys after the root; empty for `{{input}}`. */
      readonly keys: readonly string[];
    };

export interface TemplateProblem {
  /** Offset of the `{{` the problem is about (0-based, in UTF-16 units). */
  readonly offset: number;
  readonly message: string;
}

export interface ParsedTemplate {
  readonly parts: readonly TemplatePart[];
  /** Syntax problems; the placeholders they are about are kept as literal text in `parts`. */
  readonly problems: readonly TemplateProblem[];
}

const PLACEHOLDER = /^([A-Za-z_]\w*)((?:\.[\w-]+)*)$/;
const SHOWN = 40;

/** Splits a template into text and placeholders, and reports syntax problems. */
export function parseTemplate(template: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  const problems: TemplateProblem[] = [];
  let text = '';
  let at = 0;
  for (;;) {
    const open = template.indexOf('{{', at);
    if (open === -1) break;
    const close = template.indexOf('}}', open + 2);
    if (close === -1) {
      problems.push({
        offset: open,
        message: `unterminated '{{' at character ${open + 1} (${excerpt(template.slice(open))}): close the placeholder with '}}'`,
      });
      break;
    }
    const source = template.slice(open, close + 2);
    const match = PLACEHOLDER.exec(template.slice(open + 2, close).trim());
    text += template.slice(at, open);
    at = close + 2;
    if (!match) {
      problems.push({
        offset: open,
        message: `${excerpt(source)} at character ${open + 1} is not a placeholder: expected {{root.key}} with root one of ${TEMPLATE_ROOTS.join(', ')} and keys of letters, digits, _ or -`,
      });
      text += source;
      continue;
    }
    if (text !== '') parts.push({ kind: 'text', text });
    text = '';
    const keys = match[2] ? match[2].slice(1).split('.') : [];
    parts.push({ kind: 'ref', source, root: match[1]!, keys });
  }
  text += template.slice(at);
  if (text !== '') parts.push({ kind: 'text', text });
  return { parts, problems };
}

/**
 * Every problem with a template at load time: syntax, a root that is not one of
 * {@link TEMPLATE_ROOTS}, and `outputs.<key>` where no stage has that output key.
 */
export function templateProblems(
  template: string,
  outputKeys: ReadonlySet<string>,
): TemplateProblem[] {
  const parsed = parseTemplate(template);
  const problems = [...parsed.problems];
  let offset = 0;
  for (const part of parsed.parts) {
    const here = offset;
    offset += part.kind === 'text' ? part.text.length : part.source.length;
    if (part.kind === 'text') continue;
    if (!(TEMPLATE_ROOTS as readonly string[]).includes(part.root)) {
      const hint =
        part.root === 'output'
          ? "; a stage's own output is outputs.<its output key> (the stage name unless output_key is set)"
          : '';
      problems.push({
        offset: here,
        message: `${part.source} uses unknown root '${part.root}': expected one of ${TEMPLATE_ROOTS.join(', ')}${hint}`,
      });
      continue;
    }
    const key = part.keys[0];
    if (part.root === 'outputs' && key !== undefined && !outputKeys.has(key)) {
      problems.push({
        offset: here,
        message: `${part.source} names output key '${key}', which no stage has (output keys: ${[...outputKeys].join(', ')})`,
      });
    }
  }
  return problems.sort((a, b) => a.offset - b.offset);
}

/**
 * Renders a template against a run's envelope. `interrupt` is the response to the run's most
 * recent interrupt. Total: a placeholder that does not parse is kept as text, an unknown root
 * renders as the empty string (validation rejects both at load).
 */
export function renderTemplate(
  template: string | ParsedTemplate,
  envelope: Readonly<Envelope>,
  /** Applied to each inserted value (e.g. shell quoting for a `shell` agent's command). */
  quote: (text: string) => string = (text) => text,
): string {
  const parsed = typeof template === 'string' ? parseTemplate(template) : template;
  const roots: Record<TemplateRoot, unknown> = {
    input: envelope.input,
    outputs: envelope.outputs,
    state: envelope.state,
    metadata: envelope.metadata,
    interrupt: envelope.last_interrupt?.response,
  };
  let out = '';
  for (const part of parsed.parts) {
    if (part.kind === 'text') {
      out += part.text;
      continue;
    }
    const root = Object.hasOwn(roots, part.root) ? roots[part.root as TemplateRoot] : undefined;
    const value = part.keys.length === 0 ? root : readPath(root, part.keys.join('.'));
    if (value === undefined || value === null) continue;
    // JSON.stringify gives undefined for what JSON cannot hold (an inherited function, `input.toString`).
    out += quote((typeof value === 'string' ? value : JSON.stringify(value)) ?? '');
  }
  return out;
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > SHOWN ? `${flat.slice(0, SHOWN)}…` : flat;
}
