/**
 * What an acknowledged task survives, derived from settings read back from the servers and
 * the SQLite connections at run time — never from text written in an adapter — so the table
 * stays true when a server's configuration changes.
 */
import type { PostgresSettings, RedisSettings } from './servers.ts';
import type { SqlitePragmas } from './types.ts';

export function postgresDurability(s: PostgresSettings): string {
  const read = `fsync=${s.fsync}, synchronous_commit=${s.synchronous_commit}, full_page_writes=${s.full_page_writes}`;
  let claim: string;
  if (s.fsync !== 'on') claim = 'a power loss can corrupt the cluster';
  else if (s.synchronous_commit === 'off')
    claim = 'a crash can lose the last commits (asynchronous commit)';
  else if (s.full_page_writes !== 'on') claim = 'commits are flushed, but torn pages are possible';
  else claim = 'survives power loss';
  return `${read} → ${claim}`;
}

export function redisDurability(s: RedisSettings): string {
  const read = `appendonly=${s.appendonly}, appendfsync=${s.appendfsync}, save="${s.save}"`;
  let claim: string;
  if (s.appendonly === 'yes') {
    if (s.appendfsync === 'always') claim = 'survives power loss';
    else if (s.appendfsync === 'everysec') claim = 'a crash can lose about the last second';
    else claim = 'the OS decides when to flush: a crash can lose the last ~30 s';
  } else if (s.save.trim() === '') claim = 'in memory only: lost on a Redis crash or restart';
  else claim = 'RDB snapshots only: a crash loses everything since the last snapshot';
  return `${read} → ${claim}`;
}

export function sqliteDurability(p: SqlitePragmas): string {
  const read = `journal_mode=${p.journal_mode}, synchronous=${p.synchronous}`;
  const wal = p.journal_mode.toLowerCase() === 'wal';
  let claim: string;
  if (p.synchronous === 'FULL' || p.synchronous === 'EXTRA') claim = 'survives power loss';
  else if (p.synchronous === 'NORMAL')
    claim = wal
      ? 'survives a process crash; a power loss can lose the last commits'
      : 'survives a process crash; a power loss can corrupt the database';
  else claim = 'survives a process crash; a power loss can corrupt the database';
  return `${read} → ${claim}`;
}
