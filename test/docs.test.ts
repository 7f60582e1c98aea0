/**
 * Documentation stays in step with the code and with itself: every error code and event type
 * is documented, and every link in the repository's markdown points inside the repository, at
 * a file that exists and, for `#anchor` links, at a heading that exists.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { buildProgram } from '../src/cli/program.ts';
import { ERROR_CATALOGUE, EVENT_TYPES } from '../src/core/index.ts';

/** Every runnable command path of the CLI: `run`, `ledger verify`, … */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((c) => {
    const path = [...prefix, c.name()];
    return c.commands.length ? commandPaths(c, path) : [path];
  });
}

const read = (file: string) => readFileSync(new URL(`../docs/${file}`, import.meta.url), 'utf8');

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Directories that hold no documentation of this repository (dependencies, build output). */
const SKIP_DIRS = new Set(['node_modules', 'dist', 'dist-check', 'coverage', '.git']);

/** Every markdown file of the repository, relative to its root. */
function markdownFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || SKIP_DIRS.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...markdownFiles(path));
    else if (entry.name.endsWith('.md')) out.push(relative(ROOT, path));
  }
  return out.sort();
}

/** The text outside fenced code blocks. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** The text outside code blocks and inline code spans (links there are not links). */
function prose(markdown: string): string {
  return withoutFences(markdown).replace(/``[^`]*``|`[^`\n]*`/g, '');
}

/** Link targets: inline links and images `[text](target)` and reference definitions. */
function links(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const references = [...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!);
  return [...inline, ...references];
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 … for repeats. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const match of withoutFences(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const heading = match[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text
      .replace(/<[^>]+>/g, '');
    const slug = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** What is wrong with one link of `file`, or null when it is fine. */
function problem(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto: … (not checked here)
  const [pathPart = '', anchor] = target.split('#', 2);
  const path = decodeURIComponent(pathPart.split('?')[0]!);
  const resolved =
    path === ''
      ? join(ROOT, file)
      : path.startsWith('/')
        ? join(ROOT, path)
        : resolve(ROOT, dirname(file), path);
  const inside = relative(ROOT, resolved);
  if (inside === '..' || inside.startsWith(`..${sep}`) || resolve(inside) === inside)
    return 'points outside the repository';
  if (!existsSync(resolved)) return `${inside} does not exist`;
  if (anchor === undefined || anchor === '') return null;
  if (!resolved.endsWith('.md') || statSync(resolved).isDirectory()) return null;
  const known = anchors(readFileSync(resolved, 'utf8'));
  return known.has(decodeURIComponent(anchor)) ? null : `${inside} has no heading for #${anchor}`;
}

describe('docs', () => {
  it('docs/errors.md has a table row for exactly the codes in the catalogue', () => {
    const documented = [...read('errors.md').matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(new Set(documented)).toEqual(new Set(Object.keys(ERROR_CATALOGUE)));
  });

  it('docs/concepts.md names every event type', () => {
    const text = read('concepts.md');
    const missing = EVENT_TYPES.filter((type) => !text.includes(`\`${type}\``));
    expect(missing).toEqual([]);
  });

  it('every markdown link points inside the repository, at a file and heading that exist', () => {
    const files = markdownFiles();
    expect(files).toEqual(
      expect.arrayContaining(['README.md', 'CHANGELOG.md', 'docs/architecture.md']),
    );
    const broken: string[] = [];
    for (const file of files)
      for (const target of links(readFileSync(join(ROOT, file), 'utf8'))) {
        const why = problem(file, target);
        if (why) broken.push(`${file}: (${target}) ${why}`);
      }
    expect(broken).toEqual([]);
  });

  it('the link check catches what it should', () => {
    expect(problem('README.md', '../shared/DESIGN.md')).toBe('points outside the repository');
    expect(problem('docs/embedding.md', '../../outside.md')).toBe('points outside the repository');
    expect(problem('docs/embedding.md', 'nowhere.md')).toBe(`docs${sep}nowhere.md does not exist`);
    expect(problem('docs/embedding.md', 'errors.md#no-such-heading')).toBe(
      `docs${sep}errors.md has no heading for #no-such-heading`,
    );
    expect(problem('docs/embedding.md', '#the-kernel')).toBeNull();
    expect(problem('docs/embedding.md', 'cli.md#warden-run')).toBeNull();
    expect(problem('docs/embedding.md', 'https://example.com/x')).toBeNull();
    expect(
      links('see [a](a.md), `[b](b.md)`, ![c](c.png "t")\n```\n[d](d.md)\n```\n[e]: e.md'),
    ).toEqual(['a.md', 'c.png', 'e.md']);
  });

  it('docs/cli.md documents every command of the CLI, in its table and in a section', () => {
    const text = read('cli.md');
    const paths = commandPaths(buildProgram(() => {}));
    expect(paths.length).toBeGreaterThan(15);
    const noSection = paths.filter((p) => !text.includes(`\`warden ${p.join(' ')}\``));
    expect(noSection).toEqual([]);
    const rows = text.split('\n').filter((line) => line.startsWith('| ['));
    const noRow = paths.filter(
      (p) => !rows.some((row) => row.includes(`\`${p[0]} `) || row.includes(`\`${p[0]}\``)),
    );
    expect(noRow).toEqual([]);
  });
});
