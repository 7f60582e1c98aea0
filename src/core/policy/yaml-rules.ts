/**
 * One `policy.yaml` entry → one Cedar expression. Each function either returns Cedar text
 * built only through `cedar-text.ts` (so hostile names stay data) or throws {@link EntryError}
 * saying what was expected; the compiler turns that into POLICY_INVALID with the key path.
 */
import { posix } from 'node:path';

import { cedarEntity, cedarLike, cedarString, hasLoneSurrogate, WILDCARD } from './cedar-text.ts';

export class EntryError extends Error {}

/** Control characters never belong in a name, a root or a prefix. */
const CONTROL = /[\u0000-\u001f\u007f]/;

function plainName(text: string, what: string): string {
  if (CONTROL.test(text) || hasLoneSurrogate(text))
    throw new EntryError(`expected ${what} without control characters`);
  return text;
}

/** A principal scope clause and the key its trust level is filed under. */
export interface PrincipalPattern {
  readonly scope: string;
  readonly trustKey: string;
}

/**
 * `wf/stage` (one agent), `wf` or `wf/*` (every stage of a workflow), `*` (every agent), and
 * with `skills` true a skill name or `*`. `skill:<name>` selects a skill where agents are
 * expected (secrets' agent lists).
 */
export function principalPattern(text: string, skills = false): PrincipalPattern {
  if (!skills && text.startsWith('skill:')) return principalPattern(text.slice(6), true);
  if (skills) {
    if (text === '*') return { scope: 'principal is Skill', trustKey: 'skill:*' };
    if (text.includes('*') || text === '')
      throw new EntryError('expected a skill name or "*" (a "*" is only allowed alone)');
    const name = plainName(text, 'a skill name');
    return { scope: `principal == ${cedarEntity('Skill', name)}`, trustKey: `skill:${name}` };
  }
  if (text === '*') return { scope: 'principal is Agent', trustKey: 'agent:*' };
  const parts = text.split('/');
  const expected =
    'expected "<workflow>/<stage>", "<workflow>", "<workflow>/*" or "*" (names without "/" or "*")';
  if (parts.length > 2 || parts.some((p) => p === '')) throw new EntryError(expected);
  const [workflow, stage] = parts as [string, string | undefined];
  if (workflow.includes('*') || (stage !== undefined && stage !== '*' && stage.includes('*')))
    throw new EntryError(expected);
  plainName(text, 'an agent pattern');
  if (stage === undefined || stage === '*')
    return {
      scope: `principal is Agent in ${cedarEntity('Workflow', workflow)}`,
      trustKey: `agent:${workflow}/*`,
    };
  return { scope: `principal == ${cedarEntity('Agent', text)}`, trustKey: `agent:${text}` };
}

/** `name`, `prefix.*` (a ToolGroup) or `*`. */
export function toolCondition(text: string): string {
  if (text === '*') return 'true';
  if (text.endsWith('.*') && text.length > 2 && !text.slice(0, -2).includes('*'))
    return `resource in ${cedarEntity('ToolGroup', plainName(text.slice(0, -2), 'a tool group'))}`;
  if (text.includes('*'))
    throw new EntryError('expected a tool name, "<prefix>.*" or "*" (a "*" only alone or last)');
  return `resource == ${cedarEntity('Tool', plainName(text, 'a tool name'))}`;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };
const URL_ENTRY =
  /^(?:(?<scheme>[A-Za-z][A-Za-z0-9+.-]*):\/\/)?(?<host>\[[^\]]*\]|[^/:[\]]+)(?::(?<port>[0-9]{1,5}))?(?<path>\/.*)?$/s;
const HOSTNAME = /^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])$/;

/** The host as the WHATWG URL parser writes it (lower case, punycode, IPv6 compressed). */
function normalHost(host: string): string {
  let normal: string;
  try {
    normal = new URL(`http://${host}/`).hostname;
  } catch {
    throw new EntryError(`expected a host name or IP address (got ${JSON.stringify(host)})`);
  }
  if (!HOSTNAME.test(normal))
    throw new EntryError(`expected a host name or IP address (got ${JSON.stringify(host)})`);
  return normal;
}

/**
 * `[scheme://]host[:port][/path]`. Host: a name (exact), `*.name` (subdomains only, not the
 * name itself) or `*`. No scheme: http or https; no port: the scheme's default port. A path is
 * a prefix on segment boundaries (`/api` matches `/api` and `/api/x`, not `/apix`); a trailing
 * `*` makes it a plain string prefix.
 */
export function urlCondition(text: string): string {
  if (CONTROL.test(text) || hasLoneSurrogate(text))
    throw new EntryError('expected a URL pattern without control characters');
  const m = URL_ENTRY.exec(text);
  if (!m?.groups) throw new EntryError('expected [scheme://]host[:port][/path]');
  const { scheme: rawScheme, host: rawHost, port: rawPort, path: rawPath } = m.groups;
  const scheme = rawScheme?.toLowerCase();
  if (scheme !== undefined && !(scheme in DEFAULT_PORTS))
    throw new EntryError(`expected scheme http or https (got ${JSON.stringify(rawScheme)})`);
  const port = rawPort === undefined ? undefined : Number(rawPort);
  if (port !== undefined && (port < 1 || port > 65_535))
    throw new EntryError(`expected a port from 1 to 65535 (got ${rawPort})`);
  const clauses: string[] = [];
  const host = rawHost!;
  if (host === '*') {
    // any host: only scheme, port and path constrain it
  } else if (host.startsWith('*.'))
    clauses.push(`resource.host like ${cedarLike([WILDCARD, `.${normalHost(host.slice(2))}`])}`);
  else if (host.includes('*'))
    throw new EntryError('expected a host, "*.<domain>" or "*" (a "*" only alone or first)');
  else clauses.push(`resource.host == ${cedarString(normalHost(host))}`);
  clauses.push(schemePort(scheme, port));
  if (rawPath !== undefined && rawPath !== '/' && rawPath !== '/*')
    clauses.push(pathClause(rawPath));
  return clauses.length === 1 ? clauses[0]! : `(${clauses.join(' && ')})`;
}

function schemePort(scheme: string | undefined, port: number | undefined): string {
  const one = (s: string) =>
    `(resource.scheme == ${cedarString(s)} && resource.port == ${port ?? DEFAULT_PORTS[s]!})`;
  return scheme === undefined ? `(${one('https')} || ${one('http')})` : one(scheme);
}

function pathClause(raw: string): string {
  const prefixOnly = raw.endsWith('*');
  const body = prefixOnly ? raw.slice(0, -1) : raw;
  let path: string;
  try {
    path = new URL(`http://h${body}`).pathname; // the same normalisation request URLs get
  } catch {
    throw new EntryError(`expected a URL path (got ${JSON.stringify(raw)})`);
  }
  if (prefixOnly || path.endsWith('/')) return `resource.path like ${cedarLike([path, WILDCARD])}`;
  return `(resource.path == ${cedarString(path)} || resource.path like ${cedarLike([`${path}/`, WILDCARD])})`;
}

/**
 * A directory root: absolute, or relative to `baseDir`; it matches the root and everything
 * under it. A trailing `/` or `/*` is ignored.
 */
export function rootCondition(text: string, baseDir: string | undefined): string {
  plainName(text, 'a directory root');
  let root = text.endsWith('/*') ? text.slice(0, -2) || '/' : text;
  if (!posix.isAbsolute(root)) {
    if (baseDir === undefined)
      throw new EntryError(
        'expected an absolute path (a relative root needs the policy directory: pass baseDir)',
      );
    root = posix.resolve(baseDir, root);
  }
  root = posix.normalize(root);
  if (root.length > 1 && root.endsWith('/')) root = root.slice(0, -1);
  if (root === '/') return 'resource.path like "/*"';
  return `(resource.path == ${cedarString(root)} || resource.path like ${cedarLike([`${root}/`, WILDCARD])})`;
}

/**
 * A command prefix on word boundaries (`git status` matches `git status` and
 * `git status -s`, not `git statusx`), for simple commands only; `*` allows every command.
 */
export function commandCondition(text: string): string {
  // Only spaces are trimmed: any other character is part of the prefix.
  const prefix = text.replace(/^ +| +$/g, '');
  if (prefix === '*') return 'true';
  if (prefix === '') throw new EntryError('expected a command prefix');
  plainName(prefix, 'a command prefix');
  return `(resource.simple && (resource.text == ${cedarString(prefix)} || resource.text like ${cedarLike([`${prefix} `, WILDCARD])}))`;
}

/** `*`, `ns` or `ns/*` (a namespace) or `ns/key` (one key). */
export function kvCondition(text: string): string {
  if (text === '*') return 'true';
  const slash = text.indexOf('/');
  const ns = slash < 0 ? text : text.slice(0, slash);
  const key = slash < 0 ? '*' : text.slice(slash + 1);
  if (ns === '' || ns.includes('*') || key === '' || (key !== '*' && key.includes('*')))
    throw new EntryError('expected "<namespace>", "<namespace>/*", "<namespace>/<key>" or "*"');
  plainName(text, 'a KV name');
  const nsClause = `resource.namespace == ${cedarString(ns)}`;
  return key === '*' ? nsClause : `(${nsClause} && resource.key == ${cedarString(key)})`;
}

/** A name of a `type` entity or `*`. */
export function nameCondition(text: string, type: string): string {
  if (text === '*') return 'true';
  if (text.includes('*')) throw new EntryError('expected a name or "*" (a "*" only alone)');
  return `resource == ${cedarEntity(type, plainName(text, 'a name'))}`;
}

/** An ACP method entry → the action entity it names: `m`, `prefix.*` (a group) or `*`. */
export function methodAction(text: string): string {
  if (text === '*') return 'Action::"acp"';
  if (text.endsWith('.*') && text.length > 2 && !text.slice(0, -2).includes('*'))
    return cedarEntity('Action', `acp:${plainName(text, 'a method prefix')}`);
  if (text.includes('*'))
    throw new EntryError('expected a method, "<prefix>.*" or "*" (a "*" only alone or last)');
  return cedarEntity('Action', `acp:${plainName(text, 'a method name')}`);
}

/** A secret name as in the environment: letters, digits and `_`, not starting with a digit. */
export function secretName(text: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(text))
    throw new EntryError('expected a secret name of letters, digits and _ (e.g. GITHUB_TOKEN)');
  return text;
}
