/**
 * A `warden serve` with the jeeves gRPC listener, and clients loaded from proto/ with
 * @grpc/proto-loader (not Warden's own code), for the gRPC integration tests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { expect } from 'vitest';

import { runCli } from './cli.ts';
import { type DaemonProcess, startDaemon } from './daemon.ts';
import { tempDir } from './tmp.ts';

export const ENGINE_PROTO = join(
  import.meta.dirname,
  '..',
  '..',
  'proto',
  'jeeves',
  'engine',
  'v1',
  'engine.proto',
);

export type Unary = (
  request: object,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, reply: Record<string, unknown>) => void,
) => void;
export type JeevesClient = grpc.Client & Record<string, Unary>;
export type JeevesServices = Record<string, grpc.ServiceClientConstructor>;

export interface GrpcDaemon {
  readonly daemon: DaemonProcess;
  readonly home: string;
  readonly address: string;
  readonly services: JeevesServices;
  /** A client of `service` (closed by {@link GrpcDaemon.stop}). */
  client(service: string): JeevesClient;
  stop(): Promise<void>;
}

/**
 * Initialises a home, writes config.yaml with `server.grpc` on a free loopback port (anonymous
 * callers act as `anonymous`) plus `extraConfig`, and starts the daemon.
 */
export async function startGrpcDaemon(
  options: { anonymous?: string; extraConfig?: string } = {},
): Promise<GrpcDaemon> {
  const home = tempDir('warden-grpc-');
  const init = await runCli(['init'], { home });
  expect(init.code, init.stderr).toBe(0);
  writeFileSync(
    join(home, 'config.yaml'),
    [
      'security:',
      '  watch_policy: false',
      'server:',
      '  grpc:',
      '    listen: 127.0.0.1:0',
      `    anonymous: ${options.anonymous ?? 'jeeves-client'}`,
      options.extraConfig ?? '',
    ].join('\n'),
  );
  const daemon = await startDaemon(home);
  const line = daemon.logs.find((l) => l.msg === 'gRPC listening');
  expect(line, daemon.output()).toBeDefined();
  const address = `127.0.0.1:${String(line!.port)}`;
  const services = loadJeevesServices();
  const clients: grpc.Client[] = [];
  return {
    daemon,
    home,
    address,
    services,
    client(service) {
      const c = new services[service]!(
        address,
        grpc.credentials.createInsecure(),
      ) as unknown as JeevesClient;
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.close();
      await daemon.stop();
    },
  };
}

export function loadJeevesServices(): JeevesServices {
  const definition = protoLoader.loadSync(ENGINE_PROTO, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    jeeves: { engine: { v1: JeevesServices } };
  };
  return root.jeeves.engine.v1;
}

/** Metadata with the given keys. */
export function metadataOf(values: Record<string, string>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(values)) metadata.set(key, value);
  return metadata;
}

export function call(
  c: JeevesClient,
  method: string,
  request: object,
  metadata = new grpc.Metadata(),
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    c[method]!(request, metadata, (error, reply) => (error ? reject(error) : resolve(reply))),
  );
}

/** The error a call failed with (the test fails if it succeeded). */
export async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

export const jsonBytes = (value: unknown) => Buffer.from(JSON.stringify(value));
export const parseBytes = (bytes: unknown) =>
  JSON.parse((bytes as Buffer).toString('utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
