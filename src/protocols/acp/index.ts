export {
  type Authenticate,
  createAuthenticator,
  sameSecret,
  type TokenVerifier,
  unauthorized,
} from './auth.ts';
export { AcpConnection, type ConnectionHooks, type ConnectionLimits } from './connection.ts';
export { EventPump } from './event-pump.ts';
export { parseFrame, toRpcError } from './frames.ts';
export {
  AcpServer,
  type AcpServerOptions,
  bearerToken,
  credentialInUrl,
  refuseUpgrade,
} from './server.ts';
