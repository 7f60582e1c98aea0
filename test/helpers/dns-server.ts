/**
 * A small authoritative DNS server on 127.0.0.1:<random port> (UDP) for SSRF tests: it answers
 * A and AAAA from a table set per test, so host names can resolve to private, loopback or
 * metadata addresses without touching real DNS. A name given a sequence of record sets answers
 * them in turn, one per query of each type (the last repeats): `[{A: ['127.0.0.2']}, {A:
 * ['127.0.0.3']}]` is a rebinding name. Names not in the table get NXDOMAIN; a name without
 * records of the asked type gets an empty answer (NODATA). TTLs are 0 so no resolver caches.
 */
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';

import { type Answer, decode, encode, type Packet } from 'dns-packet';

export interface DnsRecordSet {
  readonly A?: readonly string[];
  readonly AAAA?: readonly string[];
}

export interface DnsQuery {
  readonly name: string;
  readonly type: string;
}

export interface TestDnsServer {
  readonly port: number;
  /** Sets (replaces) a name's answers; a sequence answers successive queries in turn. */
  set(name: string, records: DnsRecordSet | readonly DnsRecordSet[]): void;
  /** Every query received, in order (names lower-cased), optionally for one name. */
  queries(name?: string): DnsQuery[];
  /** Resolves through this server (A and AAAA): a `resolve` for the SSRF guard. */
  resolve(hostname: string): Promise<Array<{ address: string; family: number }>>;
  close(): Promise<void>;
}

const NXDOMAIN = 3;

export async function startDnsServer(
  table: Record<string, DnsRecordSet | readonly DnsRecordSet[]> = {},
): Promise<TestDnsServer> {
  const records = new Map<string, readonly DnsRecordSet[]>();
  const counts = new Map<string, number>();
  const log: DnsQuery[] = [];
  const set = (name: string, value: DnsRecordSet | readonly DnsRecordSet[]) => {
    const key = name.toLowerCase().replace(/\.$/, '');
    records.set(key, Array.isArray(value) ? value : [value as DnsRecordSet]);
    for (const type of ['A', 'AAAA']) counts.delete(`${key} ${type}`);
  };
  for (const [name, value] of Object.entries(table)) set(name, value);

  const socket = createSocket('udp4');
  socket.on('message', (message, peer) => {
    let query: Packet;
    try {
      query = decode(message);
    } catch {
      return; // not DNS: ignore, as a real server would
    }
    const question = query.questions?.[0];
    if (question === undefined) return;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    log.push({ name, type: question.type });
    const sequence = records.get(name);
    const answers: Answer[] = [];
    if (sequence !== undefined && (question.type === 'A' || question.type === 'AAAA')) {
      const key = `${name} ${question.type}`;
      const n = counts.get(key) ?? 0;
      counts.set(key, n + 1);
      const current = sequence[Math.min(n, sequence.length - 1)] ?? {};
      for (const data of current[question.type] ?? []) {
        answers.push({ type: question.type, name: question.name, ttl: 0, class: 'IN', data });
      }
    }
    const response = encode({
      type: 'response',
      id: query.id ?? 0,
      flags: (1 << 10) | (sequence === undefined ? NXDOMAIN : 0), // authoritative
      questions: [question],
      answers,
    });
    socket.send(response, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();

  const resolver = new Resolver({ timeout: 1_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);

  return {
    port,
    set,
    queries: (name) =>
      log.filter((q) => name === undefined || q.name === name.toLowerCase().replace(/\.$/, '')),
    async resolve(hostname) {
      const [v4, v6] = await Promise.allSettled([
        resolver.resolve4(hostname),
        resolver.resolve6(hostname),
      ]);
      const out = [
        ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
        ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
      ];
      if (out.length === 0) {
        const failure: unknown =
          v4.status === 'rejected' ? v4.reason : v6.status === 'rejected' ? v6.reason : undefined;
        throw failure instanceof Error
          ? failure
          : new Error(`${hostname} has no A or AAAA records`);
      }
      return out;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
