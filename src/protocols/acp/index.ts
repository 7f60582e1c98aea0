export {
  type Authenticate,
  authenticateRequest,
  bearerToken,
  createAuthenticator,
  credentialInUrl,
} from './auth.ts';
export { AcpConnection, type ConnectionHooks, type ConnectionLimits } from './connection.ts';
export { EventPump } from './event-pump.ts';
export { parseFrame, toRpcError } from './frames.ts';
export { AcpServer, type AcpServerOptions, refuseUpgrade } from './server.ts';
