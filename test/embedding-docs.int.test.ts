/**
 * docs/embedding.md cannot rot: every code block in it is an example program from
 * examples/embedding/ (the whole file, or an excerpt of one, marked in the page), every example
 * runs — against the package as it is built and published (`dist/` and the `exports` map,
 * imported as `warden` from a package with `"type": "module"`, and required from CommonJS) —
 * and the output the page shows is what the example prints.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { REPO } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const DOC = 'docs/embedding.md';
const EXAMPLES = 'examples/embedding';
const CODE_LANGS = new Set(['ts', 'typescript', 'js', 'cjs', 'mjs']);

interface Block {
  readonly lang: string;
  readonly text: string;
  /** `example: <file>` (the whole file), `excerpt: <file>` or `output: <file>`; null if unmarked. */
  readonly marker: { readonly kind: string; readonly file: string } | null;
  readonly line: number;
}

/** The fenced blocks of a markdown page, each with the marker comment on the line before it. */
function blocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    if (end === -1) throw new Error(`${DOC}:${i + 1}: unclosed code block`);
    const marker = /^<!-- (example|excerpt|output): (\S+) -->$/.exec(lines[i - 1] ?? '');
    out.push({
      lang: open[1]!,
      text: lines.slice(i + 1, end).join('\n'),
      marker: marker ? { kind: marker[1]!, file: marker[2]! } : null,
      line: i + 1,
    });
    i = end;
  }
  return out;
}

/** Whether `chunks` appear in `lines` in order, each as consecutive lines (compared trimmed). */
function containsInOrder(lines: readonly string[], chunks: readonly (readonly string[])[]) {
  let from = 0;
  for (const chunk of chunks) {
    let found = -1;
    for (let i = from; i + chunk.length <= lines.length && found === -1; i++)
      if (chunk.every((l, j) => l.trim() === lines[i + j]!.trim())) found = i;
    if (found === -1) return { ok: false, missing: chunk.join('\n') };
    from = found + chunk.length;
  }
  return { ok: true, missing: '' };
}

/** A block split at its elision lines (`// …` in code, `…` in output). */
function chunksOf(text: string, elision: string): string[][] {
  const chunks: string[][] = [[]];
  for (const line of text.split('\n')) {
    if (line.trim() === elision) chunks.push([]);
    else chunks.at(-1)!.push(line);
  }
  return chunks.filter((c) => c.length > 0);
}

function run(
  file: string,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.WARDEN_MODEL; // the examples use the scripted provider
  delete env.NODE_OPTIONS;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const doc = readFileSync(join(REPO, DOC), 'utf8');
const docBlocks = blocks(doc);
const exampleFiles = readdirSync(join(REPO, EXAMPLES)).sort();
/** Node strips TypeScript types itself (22.18+, 23.6+, 24): the `.ts` examples run as they are. */
const stripsTypes = Boolean((process.features as { typescript?: unknown }).typescript);

describe(DOC, () => {
  it('has an example or excerpt marker on every code block, naming an example file', () => {
    const code = docBlocks.filter((b) => CODE_LANGS.has(b.lang));
    expect(code.length).toBeGreaterThan(5);
    const unmarked = code.filter((b) => b.marker === null || b.marker.kind === 'output');
    expect(unmarked.map((b) => `${DOC}:${b.line}`)).toEqual([]);
    for (const b of docBlocks.filter((x) => x.marker))
      expect(
        exampleFiles.map((f) => `${EXAMPLES}/${f}`),
        `${DOC}:${b.line}`,
      ).toContain(b.marker!.file);
  });

  it('shows each whole example exactly as the file is, and each excerpt as it is in its file', () => {
    for (const b of docBlocks.filter((x) => x.marker && x.marker.kind !== 'output')) {
      const file = readFileSync(join(REPO, b.marker!.file), 'utf8').trimEnd();
      if (b.marker!.kind === 'example') {
        expect(b.text, `${DOC}:${b.line} is not ${b.marker!.file}`).toBe(file);
      } else {
        const found = containsInOrder(file.split('\n'), chunksOf(b.text, '// …'));
        expect(found.missing, `${DOC}:${b.line}: not in ${b.marker!.file}`).toBe('');
      }
    }
  });

  it('shows every example file', () => {
    const shown = new Set(docBlocks.map((b) => b.marker?.file));
    expect(exampleFiles.filter((f) => !shown.has(`${EXAMPLES}/${f}`))).toEqual([]);
  });
});

describe.skipIf(!stripsTypes)('the examples, run against the built package', () => {
  let pkg: string;
  const outputs = new Map<string, string>();

  beforeAll(() => {
    // The package as npm would install it: package.json (its `exports` map and "type":
    // "module"), dist/ built by the build script's tsconfig, and the examples beside them, so
    // `import … from 'warden'` resolves to dist/ through the package's own name.
    pkg = tempDir('warden-package-');
    const tsc = spawnSync(
      process.execPath,
      [
        join(REPO, 'node_modules/typescript/bin/tsc'),
        '-p',
        join(REPO, 'tsconfig.build.json'),
        '--outDir',
        join(pkg, 'dist'),
      ],
      { cwd: REPO, encoding: 'utf8' },
    );
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    cpSync(join(REPO, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(REPO, 'examples'), join(pkg, 'examples'), { recursive: true });
    symlinkSync(join(REPO, 'node_modules'), join(pkg, 'node_modules'));
  }, 180_000);
  afterAll(removeTempDirs);

  it.each(exampleFiles)('%s runs and exits 0', async (file) => {
    const result = await run(join(pkg, EXAMPLES, file), tempDir('warden-example-'));
    expect(result.code, result.stderr).toBe(0);
    // No warnings either (module type, experimental features) on the Node Warden is tested on.
    if (Number(process.versions.node.split('.')[0]) >= 24) expect(result.stderr).toBe('');
    outputs.set(`${EXAMPLES}/${file}`, result.stdout);
  });

  it('print the output the page shows', () => {
    const shown = docBlocks.filter((b) => b.marker?.kind === 'output');
    expect(shown.length).toBeGreaterThan(0);
    for (const b of shown) {
      const actual = outputs.get(b.marker!.file);
      expect(actual, `${b.marker!.file} did not run`).toBeDefined();
      const found = containsInOrder(actual!.split('\n'), chunksOf(b.text, '…'));
      expect(found.missing, `${DOC}:${b.line}: not printed by ${b.marker!.file}`).toBe('');
    }
  });
});
