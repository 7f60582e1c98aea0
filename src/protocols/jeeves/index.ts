/** The jeeves.engine.v1 gRPC face of `warden serve` (docs/protocol/jeeves.md). */
import type { Caller } from '../commands/index.ts';
import { commBusImpl } from './commbus.ts';
import { engineServiceImpl } from './engine-service.ts';
import { kernelServiceImpl } from './kernel-service.ts';
import { orchestrationImpl } from './orchestration.ts';
import type { JeevesServerOptions } from './server.ts';

export { ENGINE_PROTO, jeevesServices, PROTO_LOADER_OPTIONS } from './proto.ts';
export { type CallIdentity, JeevesGrpcServer, type RpcContext } from './server.ts';

/** The four jeeves services (ExecuteAgent answers UNIMPLEMENTED: engine-service.ts). */
export function jeevesImpl(): JeevesServerOptions['impl'] {
  return {
    KernelService: kernelServiceImpl(),
    EngineService: engineServiceImpl(),
    OrchestrationService: orchestrationImpl(),
    CommBusService: commBusImpl(),
  };
}

/** The caller a token-less call acts as (`server.grpc.anonymous`): read and write, no admin. */
export function anonymousCaller(name: string): Caller {
  return {
    kind: 'token',
    id: `anonymous:${name}`,
    name,
    scopes: new Set(['read', 'write']),
    connectionId: 'grpc-anonymous',
  };
}
