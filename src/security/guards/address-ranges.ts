/**
 * IP address classification for the SSRF guard (DESIGN.md §8). {@link classifyAddress} names the
 * range an address falls in and whether the guard blocks it; an allow list of CIDRs
 * ({@link parseAllowList}) lets an operator open chosen internal ranges.
 *
 * Only canonical address text is accepted (what `node:net` `isIP` accepts: dotted-quad IPv4
 * without leading zeros, IPv6 with an optional zone). Anything else — `0x7f.1`, `2130706433`,
 * `010.0.0.1` — is `invalid` and blocked: URL hosts arrive here already normalised by the
 * WHATWG parser, and resolvers return canonical text, so a non-canonical string means something
 * is off, and parsers disagree about such forms (ipaddr.js reads `010` as ten, inet_aton as eight).
 *
 * IPv6 addresses that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
 * `::a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`,
 * Teredo `2001::/32`) are classified by the IPv4 address they carry: `::ffff:127.0.0.1` is
 * loopback. Teredo carries two (server and obfuscated client); the worse of the two decides.
 * IPv6 outside global unicast `2000::/3` that matches no listed range is `reserved` (blocked):
 * unallocated space is never a legitimate fetch target.
 */
import { isIP } from 'node:net';

import ipaddr from 'ipaddr.js';

import { invalidParams } from '../../core/index.ts';

/** The ranges an address can fall in; every one but `unicast` is blocked unless allowed. */
export const ADDRESS_RANGES = [
  'unicast',
  'unspecified',
  'loopback',
  'private',
  'carrierGradeNat',
  'linkLocal',
  'uniqueLocal',
  'siteLocal',
  'metadata',
  'multicast',
  'broadcast',
  'documentation',
  'benchmarking',
  'reserved',
  'invalid',
] as const;
export type AddressRange = (typeof ADDRESS_RANGES)[number];

/** IPv6 forms that carry an IPv4 address. */
export const IPV4_EMBEDDINGS = [
  'ipv4Mapped',
  'ipv4Compatible',
  'ipv4Translated',
  'nat64',
  '6to4',
  'teredo',
] as const;
export type Ipv4Embedding = (typeof IPV4_EMBEDDINGS)[number];

export interface AddressClass {
  /** Normalised: dotted quad for IPv4, RFC 5952 text for IPv6 (zone kept); the input if invalid. */
  readonly address: string;
  /** 4, 6, or 0 for an invalid address. */
  readonly family: 0 | 4 | 6;
  /** The range; for an IPv6 form carrying IPv4, the range of the carried IPv4 address. */
  readonly range: AddressRange;
  /** True when the guard must not connect: any range but `unicast`, unless allowed. */
  readonly blocked: boolean;
  /** The IPv4 address an IPv6 address carries, and how. */
  readonly embedded?: { readonly via: Ipv4Embedding; readonly ipv4: string };
  /** The allow-list entry that let a blocked range pass. */
  readonly allowedBy?: string;
}

/** A parsed allow list: build it once with {@link parseAllowList}. */
export interface AllowList {
  readonly cidrs: readonly string[];
  /** The first entry containing `address`, if any. */
  match(address: ipaddr.IPv4 | ipaddr.IPv6): AllowEntry | undefined;
}

export interface AllowEntry {
  readonly cidr: string;
  readonly network: ipaddr.IPv4 | ipaddr.IPv6;
  readonly bits: number;
}

type Table<T> = ReadonlyArray<readonly [AddressRange, T, number]>;

const v4 = (text: string) => ipaddr.IPv4.parse(text);
const v6 = (text: string) => ipaddr.IPv6.parse(text);

// First match wins, so single addresses come before the blocks that contain them.
const IPV4_TABLE: Table<ipaddr.IPv4> = [
  ['metadata', v4('169.254.169.254'), 32], // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
  ['metadata', v4('169.254.170.2'), 32], // AWS ECS task metadata
  ['metadata', v4('100.100.100.200'), 32], // Alibaba Cloud
  ['broadcast', v4('255.255.255.255'), 32],
  ['unspecified', v4('0.0.0.0'), 8],
  ['loopback', v4('127.0.0.0'), 8],
  ['private', v4('10.0.0.0'), 8],
  ['private', v4('172.16.0.0'), 12],
  ['private', v4('192.168.0.0'), 16],
  ['carrierGradeNat', v4('100.64.0.0'), 10],
  ['linkLocal', v4('169.254.0.0'), 16],
  ['documentation', v4('192.0.2.0'), 24],
  ['documentation', v4('198.51.100.0'), 24],
  ['documentation', v4('203.0.113.0'), 24],
  ['benchmarking', v4('198.18.0.0'), 15],
  ['multicast', v4('224.0.0.0'), 4],
  ['reserved', v4('192.0.0.0'), 24], // IETF protocol assignments (DS-Lite, NAT64 discovery…)
  ['reserved', v4('192.88.99.0'), 24], // former 6to4 relay anycast
  ['reserved', v4('240.0.0.0'), 4],
];

const IPV6_TABLE: Table<ipaddr.IPv6> = [
  ['metadata', v6('fd00:ec2::254'), 128], // AWS IMDS over IPv6
  ['unspecified', v6('::'), 128],
  ['loopback', v6('::1'), 128],
  ['private', v6('64:ff9b:1::'), 48], // local-use NAT64 (RFC 8215): reaches the local translator
  ['reserved', v6('100::'), 64], // discard-only
  ['linkLocal', v6('fe80::'), 10],
  ['siteLocal', v6('fec0::'), 10], // deprecated, still routed inside some networks
  ['uniqueLocal', v6('fc00::'), 7],
  ['multicast', v6('ff00::'), 8],
  ['documentation', v6('2001:db8::'), 32],
  ['documentation', v6('3fff::'), 20],
  ['benchmarking', v6('2001:2::'), 48],
  ['reserved', v6('5f00::'), 16], // SRv6 segment identifiers
];

// Checked after the embedded forms: 2001::/32 (Teredo) sits inside 2001::/23.
const IPV6_LATE_TABLE: Table<ipaddr.IPv6> = [
  ['reserved', v6('2001::'), 23], // IETF protocol assignments (ORCHID, AMT, AS112…)
  ['unicast', v6('2000::'), 3],
];

const EMBEDDINGS: ReadonlyArray<readonly [Ipv4Embedding, ipaddr.IPv6, number]> = [
  ['ipv4Mapped', v6('::ffff:0:0'), 96],
  ['ipv4Translated', v6('::ffff:0:0:0'), 96],
  ['ipv4Compatible', v6('::'), 96],
  ['nat64', v6('64:ff9b::'), 96],
  ['6to4', v6('2002::'), 16],
  ['teredo', v6('2001::'), 32],
];

function lookupRange<T extends ipaddr.IPv4 | ipaddr.IPv6>(
  address: T,
  table: Table<T>,
): AddressRange | undefined {
  for (const [range, network, bits] of table) if (address.match(network, bits)) return range;
  return undefined;
}

function ipv4FromWords(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** The IPv4 addresses an IPv6 address carries (Teredo: server, then client). */
function embeddedIpv4(
  address: ipaddr.IPv6,
): { via: Ipv4Embedding; ipv4: ipaddr.IPv4[] } | undefined {
  const p = address.parts as [number, number, number, number, number, number, number, number];
  for (const [via, network, bits] of EMBEDDINGS) {
    if (!address.match(network, bits)) continue;
    switch (via) {
      case '6to4':
        return { via, ipv4: [ipv4FromWords(p[1], p[2])] };
      case 'teredo':
        // The client address is stored inverted (RFC 4380 §4).
        return {
          via,
          ipv4: [ipv4FromWords(p[2], p[3]), ipv4FromWords(~p[6] & 0xffff, ~p[7] & 0xffff)],
        };
      default:
        return { via, ipv4: [ipv4FromWords(p[6], p[7])] };
    }
  }
  return undefined;
}

function rangeOfIpv4(address: ipaddr.IPv4): AddressRange {
  return lookupRange(address, IPV4_TABLE) ?? 'unicast';
}

/**
 * Parses CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.2`, taken as /32 or
 * /128) into an {@link AllowList}. Throws INVALID_PARAMS naming every bad entry.
 */
export function parseAllowList(cidrs: readonly string[], where = 'allow'): AllowList {
  const entries: AllowEntry[] = [];
  const issues: { path: string; message: string }[] = [];
  cidrs.forEach((text, index) => {
    const entry = typeof text === 'string' ? parseAllowEntry(text) : undefined;
    if (entry === undefined) {
      issues.push({
        path: `${where}[${index}]`,
        message: `expected a CIDR such as '10.0.0.0/8' or 'fd00::/8', or a single IP address (got ${JSON.stringify(text)})`,
      });
    } else entries.push(entry);
  });
  if (issues.length > 0) throw invalidParams('SSRF guard allow list', issues);
  return Object.freeze({
    cidrs: Object.freeze([...cidrs]),
    match(address: ipaddr.IPv4 | ipaddr.IPv6) {
      return entries.find(
        (e) => e.network.kind() === address.kind() && address.match(e.network, e.bits),
      );
    },
  });
}

function parseAllowEntry(text: string): AllowEntry | undefined {
  const slash = text.indexOf('/');
  const host = slash === -1 ? text : text.slice(0, slash);
  if (isIP(host) === 0 || host.includes('%')) return undefined;
  const network = ipaddr.parse(host);
  const max = network.kind() === 'ipv4' ? 32 : 128;
  if (slash === -1) return { cidr: text, network, bits: max };
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) return undefined;
  return { cidr: text, network, bits: Number(bitsText) };
}

const EMPTY_ALLOW = parseAllowList([]);

/**
 * Classifies one IP address. Blocked: every range in {@link ADDRESS_RANGES} except `unicast`,
 * and anything that is not canonical IP text. An allow-list entry containing the address lets
 * it pass (for IPv4-mapped addresses an IPv4 entry containing the carried address does too:
 * the socket reaches that IPv4 host). Metadata addresses are stricter: only an entry for that
 * single address (/32 or /128) opens them, so allowing `169.254.0.0/16` for a device on the
 * link does not open the cloud credentials endpoint.
 */
export function classifyAddress(
  address: string,
  allow: AllowList | readonly string[] = EMPTY_ALLOW,
): AddressClass {
  const allowList = Array.isArray(allow)
    ? parseAllowList(allow as readonly string[])
    : (allow as AllowList);
  const family = isIP(address);
  if (family === 0) return { address, family: 0, range: 'invalid', blocked: true };
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv4') {
    const ip = parsed as ipaddr.IPv4;
    return decide(ip.toString(), 4, rangeOfIpv4(ip), [ip], allowList);
  }
  const ip6 = parsed as ipaddr.IPv6;
  const zone = ip6.zoneId === undefined ? '' : `%${ip6.zoneId}`;
  const normal = new ipaddr.IPv6(ip6.parts).toRFC5952String() + zone;
  const bare = new ipaddr.IPv6(ip6.parts);
  const own = lookupRange(bare, IPV6_TABLE);
  if (own !== undefined) return decide(normal, 6, own, [bare], allowList);
  const embedded = embeddedIpv4(bare);
  if (embedded !== undefined) {
    const ranges = embedded.ipv4.map(rangeOfIpv4);
    const worst = ranges.findIndex((r) => r !== 'unicast');
    const index = worst === -1 ? 0 : worst;
    const ipv4 = embedded.ipv4[index]!;
    // Only a mapped address reaches the carried IPv4 host itself, so only there does an IPv4
    // allow entry apply.
    const candidates = embedded.via === 'ipv4Mapped' ? [bare, ipv4] : [bare];
    return {
      ...decide(normal, 6, ranges[index]!, candidates, allowList),
      embedded: { via: embedded.via, ipv4: ipv4.toString() },
    };
  }
  const late = lookupRange(bare, IPV6_LATE_TABLE) ?? 'reserved';
  return decide(normal, 6, late, [bare], allowList);
}

function decide(
  address: string,
  family: 4 | 6,
  range: AddressRange,
  candidates: ReadonlyArray<ipaddr.IPv4 | ipaddr.IPv6>,
  allow: AllowList,
): AddressClass {
  if (range === 'unicast') return { address, family, range, blocked: false };
  for (const candidate of candidates) {
    const entry = allow.match(candidate);
    if (entry === undefined) continue;
    if (range === 'metadata' && entry.bits !== (candidate.kind() === 'ipv4' ? 32 : 128)) continue;
    return { address, family, range, blocked: false, allowedBy: entry.cidr };
  }
  return { address, family, range, blocked: true };
}
