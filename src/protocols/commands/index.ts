export { formatAttemptToken, isAttemptToken, parseAttemptToken } from './attempt-token.ts';
export { type Caller, type CommandServices, hasScope } from './context.ts';
export {
  authorize,
  callerPrincipal,
  COMMAND_SCOPES_TABLE,
  dispatch,
  parseParams,
} from './dispatch.ts';
export { handlers, type SharedCommand } from './handlers.ts';
export {
  COMMAND_SCOPES,
  type CommandName,
  type CommandParams,
  commandParams,
  isCommandName,
  PROTOCOL_VERSIONS,
  type Scope,
  SCOPES,
} from './schemas.ts';
export { type AttemptView, attemptView, type TaskView, taskView } from './views.ts';
