/**
 * Random source-of-truth documents for the `warden plan` property and differential tests,
 * built from a grammar of line kinds. Every generated line carries what the kit's rules
 * (reference/noa-kit-and-kgents.md A.3) make of it — starts section G, stops it, opens a queue
 * (and its exact name), or adds ids — worked out from how the line was built, not by running a
 * parser. `expectedQueues` turns that into the plan the rules give, as an independent model.
 *
 * The alphabet is rich in edge characters: every Python line break, Python-only whitespace,
 * characters JavaScript or a reader takes for whitespace and Python does not, em and en
 * dashes, Unicode digits, stars, backticks, JSON-escaped controls, astral characters.
 */
import fc from 'fast-check';

export const SECTION_G_HEADING = '### G. Execution Queue & Task Hooks';

/** `str.splitlines()` boundaries. */
export const LINE_BREAKS = [
  '\n',
  '\r\n',
  '\r',
  '\v',
  '\f',
  '\u001c',
  '\u001d',
  '\u001e',
  '\u0085',
  '\u2028',
  '\u2029',
] as const;

/** Python whitespace (`str.isspace()`, `\s`) that does not break a line. */
export const INLINE_WS = [
  '\t',
  ' ',
  '\u001f',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u2003',
  '\u2009',
  '\u200a',
  '\u202f',
  '\u205f',
  '\u3000',
] as const;

/** Not Python whitespace: U+FEFF is JavaScript `\s`; the others only look blank. */
export const NOT_WS = ['\ufeff', '\u200b', '\u180e'] as const;

/** `\d` in Python (category Nd), none added after Unicode 14 (Python 3.11's tables). */
const NUMBER_DIGITS = ['0', '1', '2', '7', '9', '\u0663', '\u0967', '\uff11', '\u{1d7d5}'];
/** Digit-like characters that are not category Nd. */
const NOT_DIGITS = ['\u00b3', '\u2163', '\u00bd'];

/** Pieces of names and prose: anything but a line break. */
const INLINE_TOKENS = [
  'a',
  'Z',
  'Queue',
  'name',
  '0',
  '42',
  '\u0663',
  '\u00b3',
  '*',
  '**',
  '`',
  '\u2014',
  '\u2013',
  '-',
  '#',
  '## ',
  '### G.',
  ':',
  '.',
  '(note)',
  '"',
  '\\',
  '/',
  '&',
  '\u0000',
  '\b',
  '\u007f',
  '\u00e9',
  'e\u0301',
  '\u5b9f\u884c',
  '\u{1f680}',
  '\u{1f469}\u200d\u{1f4bb}',
  '\u0645\u0631\u062d\u0628\u0627',
  '**Queue',
  '- Tasks:',
  '`TASK-001`',
  'TASK-002',
  '`TASK-01`',
  ...INLINE_WS,
  ...NOT_WS,
];

/** Tokens that neither are nor end in Python whitespace. */
const SOLID_TOKENS = INLINE_TOKENS.filter(
  (t) => t !== '' && !(INLINE_WS as readonly string[]).includes(t.at(-1)!) && !t.endsWith(' '),
);

export interface SotLine {
  readonly text: string;
  /** Its stripped text starts with the section-G heading. */
  readonly starts: boolean;
  /** Inside section G, it ends the section. */
  readonly stops: boolean;
  /** The exact queue name it opens when it is a valid queue header; otherwise null. */
  readonly queue: string | null;
  /** The ids a `- Tasks:` line adds, in order; null when it is not a Tasks line. */
  readonly ids: readonly string[] | null;
}

export interface SotDoc {
  readonly lines: readonly SotLine[];
  readonly bom: boolean;
  readonly text: string;
}

const inert = (text: string): SotLine => ({
  text,
  starts: false,
  stops: false,
  queue: null,
  ids: null,
});

const ws = fc.constantFrom(...INLINE_WS);
const wsRun = (min: number, max: number): fc.Arbitrary<string> =>
  fc.array(ws, { minLength: min, maxLength: max }).map((a) => a.join(''));
const inline = (max: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...INLINE_TOKENS), { maxLength: max }).map((a) => a.join(''));

/** A queue name's core: non-empty, first and last character not Python whitespace. */
const nameCore: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...SOLID_TOKENS), inline(6), fc.constantFrom(...SOLID_TOKENS))
  .chain(([first, middle, last]) =>
    fc.constantFrom(first, `${first}${middle}${last}`, `${first}${last}`),
  );

/** Text that starts no heading, header or Tasks line, whatever follows it. */
const prose: fc.Arbitrary<string> = fc
  .tuple(wsRun(0, 2), fc.constantFrom('x', 'Q', '*', '`', '\u2014', '(', '>', 'Notes:'), inline(8))
  .map(([a, b, c]) => `${a}${b}${c}`);

const letter = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ');

/** A task id the kit keeps: three or more ASCII digits, leading zeros and huge numbers included. */
export const taskId: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom(
      '000',
      '001',
      '021',
      '022',
      '029',
      '030',
      '041',
      '042',
      '053',
      '054',
      '061',
      '062',
      '999',
      '0301',
      '0000021',
      '18446744073709551617',
    ),
    fc
      .integer({ min: 0, max: 99_999 })
      .chain((n) => fc.integer({ min: 3, max: 7 }).map((w) => String(n).padStart(w, '0'))),
    fc
      .array(fc.constantFrom(...'0123456789'), { minLength: 20, maxLength: 40 })
      .map((d) => d.join('')),
  )
  .map((digits) => `TASK-${digits}`);

/** Tokens on a Tasks line that add nothing, and cannot join a neighbour into an id. */
const JUNK_TOKENS = [
  'TASK-002',
  '`TASK-01`',
  '`task-001`',
  '`TASK-001a`',
  '`TASK-\u0660\u0660\u0665`',
  '`TASK-`',
  '`TASK-003 `',
  '` TASK-004`',
  'note',
  '**Queue',
  '\u2014',
];
/** None starts with `T` or ends with a backtick, so no id forms across a separator. */
const SEPARATORS = [', ', ' ', ',', ' and ', '; ', '\t', '\u00a0'];

const tasksBody: fc.Arbitrary<{ text: string; ids: string[] }> = fc
  .array(
    fc.tuple(
      fc.constantFrom(...SEPARATORS),
      fc.oneof(
        taskId.map((id): { text: string; id: string | null } => ({ text: `\`${id}\``, id })),
        fc.constantFrom(...JUNK_TOKENS).map((t) => ({ text: t, id: null as string | null })),
      ),
    ),
    { maxLength: 6 },
  )
  .chain((items) =>
    fc.boolean().map((tight) => ({
      // The first token may follow the colon directly (`- Tasks:\`TASK-001\``).
      text: items.map(([sep, t], i) => (i === 0 && tight ? '' : sep) + t.text).join(''),
      ids: items.flatMap(([, t]) => (t.id === null ? [] : [t.id])),
    })),
  );

const tasksLine: fc.Arbitrary<SotLine> = fc
  .tuple(wsRun(0, 3), tasksBody, wsRun(0, 2))
  .map(([lead, body, trail]) => ({
    ...inert(`${lead}- Tasks:${body.text}${trail}`),
    ids: body.ids,
  }));

/** Lines that look like Tasks lines and are not (their ids are ignored). */
const badTasksLine: fc.Arbitrary<SotLine> = fc
  .tuple(
    wsRun(0, 2),
    fc.constantFrom(
      '* Tasks:',
      '- tasks:',
      '-Tasks:',
      '-  Tasks:',
      '- Tasks ',
      '- TASKS:',
      '\ufeff- Tasks:',
      '\u200b- Tasks:',
    ),
    tasksBody,
  )
  .map(([lead, prefix, body]) => inert(`${lead}${prefix}${body.text}`));

interface HeaderParts {
  lead: string;
  num: string;
  afterDot: string;
  afterQueue: string;
  letter: string;
  beforeDash: string;
  afterDash: string;
  core: string;
  innerTrail: string;
  trail: string;
}

const headerParts: fc.Arbitrary<HeaderParts> = fc.record({
  lead: wsRun(0, 2),
  num: fc
    .array(fc.constantFrom(...NUMBER_DIGITS), { minLength: 1, maxLength: 3 })
    .map((d) => d.join('')),
  afterDot: wsRun(0, 2),
  afterQueue: wsRun(1, 3),
  letter,
  beforeDash: wsRun(1, 3),
  afterDash: wsRun(1, 3),
  core: nameCore,
  innerTrail: wsRun(0, 2),
  trail: wsRun(0, 2),
});

const render = (p: HeaderParts): string =>
  `${p.lead}${p.num}.${p.afterDot}**Queue${p.afterQueue}${p.letter}${p.beforeDash}\u2014${p.afterDash}${p.core}${p.innerTrail}**${p.trail}`;

/** A valid queue header, and the name the kit gives it. */
const headerLine: fc.Arbitrary<SotLine> = fc.oneof(
  headerParts.map((p) => ({ ...inert(render(p)), queue: `Queue ${p.letter} \u2014 ${p.core}` })),
  // Only whitespace between the dash and the closing stars: `(.+?)` takes one blank, strip()
  // leaves the name empty.
  fc.tuple(headerParts, wsRun(2, 3)).map(([p, blanks]) => ({
    ...inert(render({ ...p, afterDash: blanks, core: '', innerTrail: '' })),
    queue: `Queue ${p.letter} \u2014 `,
  })),
);

/** One change that makes a header fail the pattern (its Tasks lines then merge upward). */
const badHeaderLine: fc.Arbitrary<SotLine> = fc
  .tuple(
    headerParts,
    fc.constantFrom(
      'hyphen',
      'en-dash',
      'two-letters',
      'lowercase-letter',
      'bullet',
      'no-dot',
      'not-a-digit',
      'no-space-after-dash',
      'no-space-before-dash',
      'text-after',
      'bom-as-space',
      'bom-first',
      'unclosed',
      'lowercase-queue',
      'single-stars',
    ),
    fc.constantFrom(...NOT_DIGITS),
  )
  .map(([p, how, notDigit]) => {
    const line = render(p);
    const head = `${p.lead}${p.num}.${p.afterDot}`;
    const text = {
      hyphen: line.replace('\u2014', '-'),
      'en-dash': line.replace('\u2014', '\u2013'),
      'two-letters': render({ ...p, letter: `${p.letter}B` }),
      'lowercase-letter': render({ ...p, letter: p.letter.toLowerCase() }),
      bullet: `- ${line.slice(head.length)}`,
      'no-dot': `${p.lead}${p.num}${p.afterDot}${line.slice(head.length)}`,
      'not-a-digit': `${p.lead}${notDigit}.${line.slice(head.length)}`,
      'no-space-after-dash': render({ ...p, afterDash: '' }),
      'no-space-before-dash': render({ ...p, beforeDash: '' }),
      'text-after': `${line} (note)`,
      'bom-as-space': render({ ...p, afterQueue: '\ufeff' }),
      'bom-first': `\ufeff${line}`,
      unclosed: `${line.slice(0, line.lastIndexOf('**'))}x`,
      'lowercase-queue': line.replace('**Queue', '**queue'),
      'single-stars': line.replace('**Queue', '*Queue'),
    }[how];
    return inert(text);
  });

const startLine: fc.Arbitrary<SotLine> = fc
  .tuple(wsRun(0, 2), fc.constantFrom('', ' (v2)', 'XYZ', ' \u2014 notes', '\u00a0'))
  .map(([lead, suffix]) => ({ ...inert(`${lead}${SECTION_G_HEADING}${suffix}`), starts: true }));

const stopLine: fc.Arbitrary<SotLine> = fc
  .oneof(
    inline(4).map((t) => `## ${t}`),
    fc.constantFrom('## ### G. Execution Queue & Task Hooks', '## '),
    fc
      .tuple(
        fc.constantFrom('H. Next section', 'G Next', 'g. notes', 'Gx', ' G. two spaces'),
        inline(3),
      )
      .map(([t, rest]) => `### ${t}${rest}`),
    fc.constant('### '),
  )
  .map((text) => ({ ...inert(text), stops: true }));

const nonStopLine: fc.Arbitrary<SotLine> = fc
  .oneof(
    inline(4).map((t) => `# ${t}`),
    inline(4).map((t) => `#### ${t}`),
    fc.tuple(wsRun(1, 2), inline(4)).map(([w, t]) => `${w}## ${t}`),
    fc.tuple(wsRun(1, 2), inline(4)).map(([w, t]) => `${w}### ${t}`),
    fc.constantFrom('##Heading', '##\tTab', '###NoSpace', '##\u00a0x', '##', '###', '##*'),
    fc.constantFrom(
      '### G.',
      '### G.1 Sub-part',
      '### G. Other',
      `\ufeff## Next`,
      `\ufeff### H. Next`,
    ),
    fc.constantFrom(
      '### G. Execution Queue and Task Hooks',
      '#### G. Execution Queue & Task Hooks',
      `\ufeff${SECTION_G_HEADING}`,
    ),
  )
  .map(inert);

const textLine: fc.Arbitrary<SotLine> = fc.oneof(prose, wsRun(0, 3)).map(inert);

/** Lines inside section G, stops excluded (they come at a chosen point). */
const bodyLine: fc.Arbitrary<SotLine> = fc.oneof(
  { arbitrary: startLine, weight: 1 },
  { arbitrary: nonStopLine, weight: 2 },
  { arbitrary: headerLine, weight: 4 },
  { arbitrary: badHeaderLine, weight: 2 },
  { arbitrary: tasksLine, weight: 8 },
  { arbitrary: badTasksLine, weight: 2 },
  { arbitrary: textLine, weight: 3 },
);

export const sotLine: fc.Arbitrary<SotLine> = fc.oneof(
  { arbitrary: bodyLine, weight: 6 },
  { arbitrary: stopLine, weight: 1 },
);

/**
 * A document: lines before section G, usually its heading, a body, sometimes a stop and more
 * lines after it; any line breaks, sometimes a BOM, sometimes no final break.
 */
export const sotDoc: fc.Arbitrary<SotDoc> = fc
  .tuple(
    fc.array(sotLine, { maxLength: 6 }),
    fc.option(startLine, { freq: 6 }),
    fc.option(headerLine, { freq: 5 }),
    fc.array(bodyLine, { maxLength: 20 }),
    fc.option(fc.tuple(stopLine, fc.array(sotLine, { maxLength: 6 })), { freq: 2 }),
    fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
    fc.boolean(),
  )
  .chain(([before, start, first, body, end, bom, trailing]) => {
    const lines = [
      ...before,
      ...(start ? [start] : []),
      ...(first ? [first] : []),
      ...body,
      ...(end ? [end[0], ...end[1]] : []),
    ];
    return fc
      .array(fc.constantFrom(...LINE_BREAKS), {
        minLength: lines.length,
        maxLength: lines.length,
      })
      .map((breaks) => {
        let text = bom ? '\ufeff' : '';
        lines.forEach((line, i) => {
          text += line.text;
          if (i < lines.length - 1 || trailing) text += breaks[i]!;
        });
        return { lines, bom: bom && lines.length > 0, text };
      });
  });

/** What the kit's rules make of a generated document: queue names and their ids, in order. */
export function expectedQueues(doc: SotDoc): { name: string; ids: string[] }[] {
  const queues: { name: string; ids: string[] }[] = [];
  let started = false;
  for (const [i, raw] of doc.lines.entries()) {
    // A BOM stays on the first line (Python's utf-8 codec keeps it): nothing there matches.
    const line = doc.bom && i === 0 ? inert(`\ufeff${raw.text}`) : raw;
    if (!started) {
      started = line.starts;
      continue;
    }
    if (line.stops) break;
    if (line.queue !== null) queues.push({ name: line.queue, ids: [] });
    else if (line.ids !== null) queues.at(-1)?.ids.push(...line.ids);
  }
  return queues;
}

/** The layer of `TASK-<digits>` (rule 6), on exact integers. */
export function expectedLayer(id: string): string {
  const n = BigInt(id.slice('TASK-'.length));
  if (n >= 1n && n <= 21n) return 'foundation';
  if (n >= 22n && n <= 29n) return 'orchestration';
  if (n >= 30n && n <= 41n) return 'platform';
  if (n >= 42n && n <= 53n) return 'services';
  if (n >= 54n && n <= 61n) return 'monitoring';
  return 'execution';
}

/** Every character kind the differential test sprinkles into documents, line breaks included. */
export const EDGE_CHARS = [
  ...LINE_BREAKS,
  ...INLINE_WS,
  ...NOT_WS,
  ...NUMBER_DIGITS,
  ...NOT_DIGITS,
  '\u2014',
  '\u2013',
  '-',
  '*',
  '`',
  '#',
  ':',
  '.',
  ' ',
  'A',
  'a',
  '\u0000',
  '\u{1f680}',
  'e\u0301',
];

/** Raw documents from coarse tokens, line breaks anywhere: no model, for the differential test. */
export const tokenSoup: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        SECTION_G_HEADING,
        `\n${SECTION_G_HEADING}\n`,
        '\n1. **Queue A \u2014 Name**\n',
        '2. **Queue B  \u2014  Other **',
        '**Queue',
        '\u2014 ',
        '- Tasks:',
        '\n- Tasks: ',
        '`TASK-001`',
        '`TASK-0301`',
        '`TASK-062`',
        '`TASK-01`',
        '\n## ',
        '\n### ',
        '\n### G.',
        '\n# ',
        '\n####',
        '\u0663. ',
        '\u00b3. ',
        '\ufeff',
      ),
      fc.constantFrom(...EDGE_CHARS),
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(''));

/** A generated document with up to three edge characters inserted anywhere (no model holds after this). */
export const mutatedDoc: fc.Arbitrary<string> = fc
  .tuple(sotDoc, fc.array(fc.tuple(fc.nat(), fc.constantFrom(...EDGE_CHARS)), { maxLength: 3 }))
  .map(([doc, edits]) => {
    let text = doc.text;
    for (const [at, ch] of edits) {
      // Insert between code points, never inside a surrogate pair.
      const points = [...text];
      const i = points.length === 0 ? 0 : at % (points.length + 1);
      points.splice(i, 0, ch);
      text = points.join('');
    }
    return text;
  });
