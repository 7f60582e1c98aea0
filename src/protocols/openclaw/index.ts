export { OpenClawAuthenticator, type OpenClawAuthMode } from './auth.ts';
export { type MethodCall, type MethodHandler, OpenClawConnection } from './connection.ts';
export {
  GATEWAY_EVENTS,
  type OpenClawGatewayOptions,
  type OpenClawGatewaySettings,
  startOpenClawGateway,
} from './gateway.ts';
export { OpenClawServer } from './server.ts';
