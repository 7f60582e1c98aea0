/**
 * PostgreSQL schema migrations: forward-only, each checksummed (sha256 of its SQL), applied under
 * a transaction-scoped advisory lock so nodes starting together migrate once (postgres/migrate.ts).
 * Never edit an applied migration; add a new one.
 *
 * The tables mirror the SQLite adapter's records, with times as `bigint` milliseconds and JSON as
 * `text` (parsed by the shared row mappers, stored exactly as written). Unlike SQLite, a task is one
 * row (PostgreSQL's MVCC writes a new tuple per update either way) and an event is one row.
 */
import type { Migration } from './sqlite.ts';

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'init',
    sql: `
CREATE TABLE sessions (
  id text PRIMARY KEY,
  key text NOT NULL UNIQUE,
  settings text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  last_seq bigint NOT NULL,
  last_hash text NOT NULL,
  pruned_seq bigint NOT NULL DEFAULT 0,
  pruned_hash text,
  version bigint NOT NULL DEFAULT 0
);

CREATE TABLE workflows (
  hash text PRIMARY KEY,
  definition text NOT NULL,
  created_at bigint NOT NULL
);

CREATE TABLE processes (
  pid text PRIMARY KEY,
  session_id text NOT NULL REFERENCES sessions(id),
  user_id text NOT NULL,
  parent_pid text,
  workflow_name text NOT NULL,
  workflow_hash text NOT NULL,
  source text,
  state text NOT NULL CHECK (state IN ('new','ready','running','waiting','blocked','terminated','zombie')),
  priority text NOT NULL,
  quota text NOT NULL,
  usage text NOT NULL,
  envelope text NOT NULL,
  current_stage text NOT NULL,
  terminal_reason text,
  terminal_message text,
  trace_id text NOT NULL,
  version bigint NOT NULL,
  created_at bigint NOT NULL,
  started_at bigint,
  updated_at bigint NOT NULL,
  completed_at bigint
);
CREATE INDEX processes_state ON processes(state, created_at);
CREATE INDEX processes_session ON processes(session_id, created_at);
CREATE INDEX processes_finished ON processes(completed_at) WHERE state IN ('terminated', 'zombie');
CREATE INDEX processes_workflow ON processes(workflow_hash);

-- n: claim order tie-break and the suffix of lease tokens handed out by one claim.
CREATE TABLE tasks (
  n bigint GENERATED ALWAYS AS IDENTITY,
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('agent_step','job','plan_task')),
  name text NOT NULL,
  lane text NOT NULL,
  session_id text NOT NULL REFERENCES sessions(id),
  process_id text,
  payload text NOT NULL,
  state text NOT NULL CHECK (state IN ('queued','running','succeeded','failed','dead','canceled')),
  priority integer NOT NULL,
  sort_key bigint NOT NULL,
  available_at bigint NOT NULL,
  attempts integer NOT NULL,
  max_attempts integer NOT NULL,
  lease_owner text,
  lease_token text,
  lease_expires_at bigint,
  claimed_at bigint,
  idempotency_key text,
  last_error text,
  result text,
  trace_id text NOT NULL,
  options text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX tasks_due ON tasks(lane, sort_key, n) WHERE state = 'queued';
CREATE INDEX tasks_available ON tasks(lane, available_at) WHERE state = 'queued';
CREATE INDEX tasks_lease ON tasks(lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_running ON tasks(lane, lease_owner) WHERE state = 'running';
CREATE INDEX tasks_dead ON tasks(lane, updated_at) WHERE state = 'dead';
CREATE INDEX tasks_finished ON tasks(updated_at) WHERE state IN ('succeeded', 'failed', 'canceled');
CREATE INDEX tasks_process ON tasks(process_id) WHERE process_id IS NOT NULL;
CREATE INDEX tasks_session ON tasks(session_id);
CREATE UNIQUE INDEX tasks_idempotency ON tasks(idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE attempts (
  task_id text NOT NULL,
  attempt integer NOT NULL,
  lease_token text NOT NULL,
  worker_id text NOT NULL,
  started_at bigint NOT NULL,
  ended_at bigint,
  outcome text,
  error text,
  PRIMARY KEY (task_id, attempt)
);

CREATE TABLE interrupts (
  id text PRIMARY KEY,
  session_id text NOT NULL REFERENCES sessions(id),
  process_id text,
  kind text NOT NULL,
  stage text,
  step integer,
  prompt text NOT NULL,
  data text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending','resolved','expired','cancelled')),
  response text,
  resolver text,
  trace_id text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint,
  resolved_at bigint
);
CREATE INDEX interrupts_status ON interrupts(status, expires_at);
CREATE INDEX interrupts_process ON interrupts(process_id, created_at);
CREATE INDEX interrupts_session ON interrupts(session_id);

-- One row per event, chained per session (hash = sha256(prev_hash || canonical event)).
CREATE TABLE events (
  session_id text NOT NULL,
  seq bigint NOT NULL,
  type text NOT NULL,
  ts bigint NOT NULL,
  trace_id text NOT NULL,
  process_id text,
  task_id text,
  attempt integer,
  data text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  PRIMARY KEY (session_id, seq)
);
CREATE INDEX events_process ON events(session_id, process_id, seq) WHERE process_id IS NOT NULL;

CREATE TABLE effects (
  idempotency_key text PRIMARY KEY,
  tool text NOT NULL,
  request_hash text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending','done','failed')),
  result_hash text,
  result text,
  owner text,
  owner_worker text,
  task_id text,
  session_id text,
  error text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX effects_finished ON effects(updated_at) WHERE status <> 'pending';
CREATE INDEX effects_task ON effects(task_id) WHERE task_id IS NOT NULL;

CREATE TABLE fair_clock (
  lane text NOT NULL,
  session_id text NOT NULL,
  rank integer NOT NULL,
  last_key bigint NOT NULL,
  PRIMARY KEY (lane, session_id, rank)
);

CREATE TABLE schedules (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  kind text NOT NULL CHECK (kind IN ('cron', 'interval')),
  expr text NOT NULL,
  job text NOT NULL,
  lane text NOT NULL,
  payload text NOT NULL,
  options text NOT NULL,
  enabled integer NOT NULL,
  next_run_at bigint NOT NULL,
  last_run_at bigint,
  last_task_id text,
  failures integer NOT NULL DEFAULT 0,
  last_error text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX schedules_due ON schedules(next_run_at) WHERE enabled = 1;

CREATE TABLE lanes (
  name text PRIMARY KEY,
  concurrency integer,
  max_depth integer,
  updated_at bigint NOT NULL
);

-- Shared rate windows (see the SQLite schema, migration 3, for the layout).
CREATE TABLE rate_windows (
  key text NOT NULL,
  window_ms bigint NOT NULL,
  bucket bigint NOT NULL,
  count double precision NOT NULL,
  PRIMARY KEY (key, window_ms, bucket)
);

CREATE TABLE services (
  name text PRIMARY KEY,
  type text NOT NULL,
  capabilities text NOT NULL,
  max_concurrency integer NOT NULL,
  owner text NOT NULL,
  health text NOT NULL,
  registered_at bigint NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE tokens (
  id text PRIMARY KEY,
  name text NOT NULL,
  scopes text NOT NULL,
  secret_hash text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint,
  revoked_at bigint,
  last_used_at bigint
);
`,
  },
  {
    version: 2,
    name: 'security',
    sql: `
-- The security entities, as in the SQLite schema (migration 6). Column names and kinds match it
-- so warden migrate copies them as they are.
CREATE TABLE policy_versions (
  id text PRIMARY KEY,
  source text NOT NULL,
  loaded_at bigint NOT NULL,
  activated_at bigint
);
CREATE INDEX policy_versions_activated ON policy_versions(activated_at) WHERE activated_at IS NOT NULL;

CREATE TABLE grants (
  id text PRIMARY KEY,
  principal text NOT NULL,
  action text NOT NULL,
  resource text NOT NULL,
  ask integer NOT NULL CHECK (ask IN (0, 1)),
  budget bigint CHECK (budget IS NULL OR budget >= 0),
  used bigint NOT NULL DEFAULT 0,
  expires_at bigint,
  revoked_at bigint,
  revoked_by text,
  revoke_reason text,
  created_at bigint NOT NULL,
  created_by text NOT NULL,
  reason text
);
CREATE INDEX grants_principal ON grants(principal, created_at);

-- One audit chain for the whole schema. Appenders on every node lock the audit_head row
-- (FOR UPDATE) at the end of their transaction, so seq stays contiguous and the chain unforked.
CREATE TABLE audit (
  seq bigint PRIMARY KEY,
  ts bigint NOT NULL,
  trace_id text NOT NULL,
  principal text NOT NULL,
  action text NOT NULL,
  resource text NOT NULL,
  decision text NOT NULL CHECK (decision IN ('allow', 'deny', 'ask')),
  decided text NOT NULL CHECK (decided IN ('allow', 'deny', 'ask')),
  reasons text NOT NULL,
  policy_version text NOT NULL,
  context text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX audit_ts ON audit(ts);
CREATE INDEX audit_principal ON audit(principal, seq);
CREATE TABLE audit_head (
  id integer PRIMARY KEY CHECK (id = 1),
  last_seq bigint NOT NULL,
  last_hash text NOT NULL
);
-- Append-only: the database refuses to change, delete or truncate a record.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit records are append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE TABLE quarantine (
  id text PRIMARY KEY,
  ts bigint NOT NULL,
  trace_id text NOT NULL,
  kind text NOT NULL,
  principal text NOT NULL,
  action text NOT NULL,
  resource text NOT NULL,
  reasons text NOT NULL,
  context text NOT NULL,
  process_id text,
  session_id text
);
CREATE INDEX quarantine_ts ON quarantine(ts);
CREATE INDEX quarantine_kind ON quarantine(kind, ts);

-- Keys compare by code point ("C"), as in SQLite: kvList orders and matches prefixes alike.
CREATE TABLE kv (
  namespace text COLLATE "C" NOT NULL,
  key text COLLATE "C" NOT NULL,
  value text NOT NULL,
  version bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (namespace, key)
);
`,
  },
];

/**
 * The database clock in milliseconds, for guards that must not trust a node's clock (a reclaim
 * never takes a lease the database does not consider expired; nothing is claimed before the
 * database considers it due). `clock_timestamp()`: the time the statement reads it, not the
 * transaction's start.
 */
export const DB_NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
