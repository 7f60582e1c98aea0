/**
 * The daemon's logger: JSON lines with `time`, a `level` label, `msg` and correlation fields;
 * a secret placed anywhere the redaction covers never reaches the output; `redactUrl` drops
 * credential query values.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, describe, expect, it } from 'vitest';

import { createLogger, REDACTED, redactUrl } from '../src/protocols/http/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

function memoryLogger(level?: 'info' | 'warn') {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger({ destination: stream, ...(level ? { level } : {}) });
  return {
    logger,
    text: () => text,
    lines: () =>
      text
        .trimEnd()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines with time, a level label, msg and correlation fields', () => {
    const { logger, lines } = memoryLogger();
    logger
      .child({
        trace_id: 'tr_1',
        session_id: 'ses_1',
        process_id: 'prc_1',
        task_id: 'tsk_1',
        attempt: 2,
        connection_id: 'conn_1',
      })
      .info('step claimed');
    logger.debug('not at info');
    const [line, ...rest] = lines();
    expect(rest).toEqual([]);
    expect(line).toMatchObject({
      level: 'info',
      msg: 'step claimed',
      trace_id: 'tr_1',
      session_id: 'ses_1',
      process_id: 'prc_1',
      task_id: 'tsk_1',
      attempt: 2,
      connection_id: 'conn_1',
    });
    expect(typeof line!.time).toBe('number');
  });

  it('honours the level', () => {
    const { logger, lines } = memoryLogger('warn');
    logger.info('dropped');
    logger.warn('kept');
    logger.error({ err: new Error('boom') }, 'failed');
    expect(lines().map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'kept'],
      ['error', 'failed'],
    ]);
  });

  it('never writes a secret placed where credentials go', () => {
    const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
    const { logger, text, lines } = memoryLogger();
    const carriers: Array<Record<string, unknown>> = [
      { authorization: `Bearer ${secret}` },
      { headers: { authorization: `Bearer ${secret}`, cookie: `sid=${secret}` } },
      { token: secret },
      { call: { token: secret } },
      { secret },
      { provider: { secret } },
      { password: secret },
      { login: { password: secret } },
      { attempt_token: secret },
      { claim: { attempt_token: secret } },
      { params: { attempt_token: secret, token: secret, task_id: 'tsk_1' } },
      { req: { headers: { authorization: `Bearer ${secret}`, cookie: secret } } },
      {
        req: {
          method: 'GET',
          url: `/acp?token=${secret}&access_token=${secret}&x=1`,
          headers: { authorization: `Bearer ${secret}`, 'user-agent': 'test' },
        },
      },
      { cookie: `sid=${secret}` },
      { url: redactUrl(`/events?session_id=ses_1&auth=${secret}&key=${secret}`) },
    ];
    for (const carrier of carriers) logger.info(carrier, 'refused');
    logger.child({ token: secret, connection_id: 'conn_2' }).warn('bound');
    expect(lines()).toHaveLength(carriers.length + 1);
    expect(text()).not.toContain(secret);
    expect(text()).toContain(REDACTED);
    // What is not a secret is kept.
    expect(lines()[10]).toMatchObject({ params: { task_id: 'tsk_1', token: REDACTED } });
    expect(lines()[12]).toMatchObject({
      req: {
        method: 'GET',
        url: `/acp?token=${REDACTED}&access_token=${REDACTED}&x=1`,
        user_agent: 'test',
      },
    });
    expect(lines().at(-1)).toMatchObject({ connection_id: 'conn_2', token: REDACTED });
  });

  it('writes to a file path, creating its directory', async () => {
    const file = join(tempDir(), 'logs', 'warden.log');
    const logger = createLogger({ destination: file, base: { service: 'warden' } });
    logger.info({ token: 'abc' }, 'started');
    // Writes are asynchronous: wait for the line (with a deadline).
    const deadline = Date.now() + 5_000;
    let text = '';
    while (!(text = readFileSync(file, 'utf8')).endsWith('\n') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const line = JSON.parse(text.trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ service: 'warden', msg: 'started', token: REDACTED });
    expect(line).not.toHaveProperty('pid');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('rejects bad options with INVALID_PARAMS', () => {
    expect(() => createLogger({ level: 'loud' as 'info' })).toThrow(/createLogger: level/);
    expect(() => createLogger({ destination: -1 })).toThrow(/INVALID_PARAMS|createLogger/);
  });
});

describe('redactUrl', () => {
  it.each([
    ['/acp?token=abc', `/acp?token=${REDACTED}`],
    ['/acp?x=1&Access_Token=abc&y=2', `/acp?x=1&Access_Token=${REDACTED}&y=2`],
    [
      'http://h:1/p?auth=a&key=b&password=c#frag',
      `http://h:1/p?auth=${REDACTED}&key=${REDACTED}&password=${REDACTED}#frag`,
    ],
    ['/p?to%6Ben=abc', `/p?to%6Ben=${REDACTED}`],
    ['/p?token', `/p?token=${REDACTED}`],
    ['/p?tokens=keep&monkey=keep', '/p?tokens=keep&monkey=keep'],
    ['/events?session_id=ses_1&from_seq=4', '/events?session_id=ses_1&from_seq=4'],
    ['/healthz', '/healthz'],
    ['/p?%E0%A4%A=x', '/p?%E0%A4%A=x'],
  ])('%s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});
