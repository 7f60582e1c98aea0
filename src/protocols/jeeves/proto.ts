/**
 * The `jeeves.engine.v1` definitions, loaded from `proto/jeeves/engine/v1/engine.proto` (the
 * package ships `proto/`; the path is the same from `src/` and from `dist/`). Field names stay
 * as written (snake_case), int64 values arrive as JavaScript numbers (epoch milliseconds fit),
 * enums as their numbers and bytes as Buffers, so handlers see the wire as it is.
 */
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const ENGINE_PROTO = fileURLToPath(
  new URL('../../../proto/jeeves/engine/v1/engine.proto', import.meta.url),
);

export const HEALTH_PROTO = fileURLToPath(
  new URL('../../../proto/grpc/health/v1/health.proto', import.meta.url),
);

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

export const SERVICE_NAMES = [
  'KernelService',
  'EngineService',
  'CommBusService',
  'OrchestrationService',
] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

let loaded: Record<ServiceName, grpc.ServiceClientConstructor> | undefined;

/** The four services' definitions (loaded once per process). */
export function jeevesServices(): Record<ServiceName, grpc.ServiceClientConstructor> {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(ENGINE_PROTO, PROTO_LOADER_OPTIONS);
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    jeeves: { engine: { v1: Record<ServiceName, grpc.ServiceClientConstructor> } };
  };
  const v1 = root.jeeves.engine.v1;
  loaded = Object.fromEntries(SERVICE_NAMES.map((name) => [name, v1[name]])) as Record<
    ServiceName,
    grpc.ServiceClientConstructor
  >;
  return loaded;
}

/** The standard grpc.health.v1 Health service definition. */
export function healthService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(HEALTH_PROTO, PROTO_LOADER_OPTIONS);
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  return root.grpc.health.v1.Health.service;
}
