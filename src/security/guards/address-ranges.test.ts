import { describe, expect, it } from 'vitest';

import { isWardenError } from '../../core/index.ts';
import { type AddressRange, classifyAddress, parseAllowList } from './address-ranges.ts';

describe('classifyAddress', () => {
  const TABLE: ReadonlyArray<readonly [string, AddressRange, boolean]> = [
    ['8.8.8.8', 'unicast', false],
    ['1.1.1.1', 'unicast', false],
    ['172.32.0.1', 'unicast', false], // just above 172.16/12
    ['100.128.0.1', 'unicast', false], // just above 100.64/10
    ['127.255.255.255', 'loopback', true],
    ['10.255.255.255', 'private', true],
    ['172.16.0.0', 'private', true],
    ['192.168.255.255', 'private', true],
    ['169.254.169.254', 'metadata', true],
    ['169.254.0.1', 'linkLocal', true],
    ['100.100.100.200', 'metadata', true],
    ['100.127.255.255', 'carrierGradeNat', true],
    ['0.1.2.3', 'unspecified', true],
    ['224.0.0.251', 'multicast', true],
    ['255.255.255.255', 'broadcast', true],
    ['198.51.100.7', 'documentation', true],
    ['203.0.113.9', 'documentation', true],
    ['198.19.255.255', 'benchmarking', true],
    ['192.0.0.8', 'reserved', true],
    ['250.1.1.1', 'reserved', true],
    ['2606:4700:4700::1111', 'unicast', false],
    ['::1', 'loopback', true],
    ['::', 'unspecified', true],
    ['fe80::1%eth0', 'linkLocal', true],
    ['febf::1', 'linkLocal', true],
    ['fc00::', 'uniqueLocal', true],
    ['fdff::1', 'uniqueLocal', true],
    ['fd00:ec2::254', 'metadata', true],
    ['ff05::2', 'multicast', true],
    ['2001:db8:1::1', 'documentation', true],
    ['3fff:1::1', 'documentation', true],
    ['2001:2::1', 'benchmarking', true],
    ['2001:10::1', 'reserved', true], // ORCHID
    ['100::1', 'reserved', true], // discard
    ['4000::1', 'reserved', true], // outside 2000::/3
    ['64:ff9b:1::a00:1', 'private', true], // local-use NAT64
    ['::ffff:8.8.8.8', 'unicast', false],
    ['::ffff:10.0.0.1', 'private', true],
    ['::2', 'unspecified', true], // IPv4-compatible 0.0.0.2
    ['64:ff9b::8.8.8.8', 'unicast', false],
    ['64:ff9b::127.0.0.1', 'loopback', true],
    ['2002:808:808::1', 'unicast', false], // 6to4 of 8.8.8.8
    ['2002:c0a8:101::1', 'private', true], // 6to4 of 192.168.1.1
    // Teredo: server 65.54.227.120, client ~(3fff:fdd2) = 192.0.2.45 (documentation).
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'documentation', true],
    // Teredo with a private server and a public client: the server decides.
    ['2001:0:a00:1:8000:63bf:f7f7:f7f7', 'private', true],
    // Teredo with both public.
    ['2001:0:808:808:8000:63bf:f7f7:f7f7', 'unicast', false],
  ];

  it.each(TABLE)('%s is %s (blocked %s)', (address, range, blocked) => {
    const c = classifyAddress(address);
    expect(c.range).toBe(range);
    expect(c.blocked).toBe(blocked);
  });

  it('normalises and names the embedded IPv4 address', () => {
    expect(classifyAddress('0:0:0:0:0:ffff:127.0.0.1')).toEqual({
      address: '::ffff:7f00:1',
      family: 6,
      range: 'loopback',
      blocked: true,
      embedded: { via: 'ipv4Mapped', ipv4: '127.0.0.1' },
    });
    expect(classifyAddress('FE80:0::1%eth0').address).toBe('fe80::1%eth0');
    expect(classifyAddress('2001:0:4136:e378:8000:63bf:3fff:fdd2').embedded).toEqual({
      via: 'teredo',
      ipv4: '192.0.2.45',
    });
  });

  it.each(['0x7f.1', '2130706433', '010.0.0.1', '127.1', '', 'localhost', '[::1]', '1.2.3.4/8'])(
    'blocks non-canonical or non-IP text %j as invalid',
    (text) => {
      expect(classifyAddress(text)).toEqual({
        address: text,
        family: 0,
        range: 'invalid',
        blocked: true,
      });
    },
  );

  it('lets an allow-list entry open a blocked range, and says which', () => {
    const allow = parseAllowList(['10.0.0.0/8', 'fd00::/8', '127.0.0.2']);
    expect(classifyAddress('10.1.2.3', allow)).toMatchObject({
      blocked: false,
      allowedBy: '10.0.0.0/8',
    });
    expect(classifyAddress('fd12::1', allow)).toMatchObject({
      blocked: false,
      allowedBy: 'fd00::/8',
    });
    expect(classifyAddress('127.0.0.2', allow)).toMatchObject({
      blocked: false,
      allowedBy: '127.0.0.2',
    });
    expect(classifyAddress('127.0.0.3', allow).blocked).toBe(true);
    expect(classifyAddress('fc00::1', allow).blocked).toBe(true);
    // A plain string array works too.
    expect(classifyAddress('192.168.1.1', ['192.168.0.0/16']).blocked).toBe(false);
  });

  it('applies an IPv4 entry to IPv4-mapped addresses only, not to other embeddings', () => {
    const allow = parseAllowList(['10.0.0.0/8']);
    expect(classifyAddress('::ffff:10.0.0.1', allow).blocked).toBe(false);
    expect(classifyAddress('64:ff9b::10.0.0.1', allow).blocked).toBe(true);
    expect(classifyAddress('2002:a00:1::', allow).blocked).toBe(true);
    expect(classifyAddress('64:ff9b::10.0.0.1', ['64:ff9b::/96']).blocked).toBe(false);
  });

  it('opens a metadata address only through an entry for that single address', () => {
    expect(classifyAddress('169.254.169.254', ['169.254.0.0/16']).blocked).toBe(true);
    expect(classifyAddress('169.254.169.254', ['0.0.0.0/0']).blocked).toBe(true);
    expect(classifyAddress('169.254.1.1', ['169.254.0.0/16']).blocked).toBe(false);
    expect(classifyAddress('169.254.169.254', ['169.254.169.254/32']).blocked).toBe(false);
    expect(classifyAddress('169.254.169.254', ['169.254.169.254']).blocked).toBe(false);
    expect(classifyAddress('fd00:ec2::254', ['fd00::/8']).blocked).toBe(true);
    expect(classifyAddress('fd00:ec2::254', ['fd00:ec2::254/128']).blocked).toBe(false);
    expect(classifyAddress('::ffff:169.254.169.254', ['169.254.169.254/32']).blocked).toBe(false);
  });
});

describe('parseAllowList', () => {
  it('names every bad entry', () => {
    try {
      parseAllowList(['10.0.0.0/8', '10.0.0.0/33', 'example.com', '1.2.3.4/x', 'fe80::1%eth0/64']);
      expect.unreachable();
    } catch (error) {
      expect(isWardenError(error, 'INVALID_PARAMS')).toBe(true);
      const issues = (error as { details: { issues: { path: string }[] } }).details.issues;
      expect(issues.map((i) => i.path)).toEqual(['allow[1]', 'allow[2]', 'allow[3]', 'allow[4]']);
    }
  });
});
