/** Authentication: API tokens and the admin token (DESIGN.md §8). */
export {
  ADMIN_SCOPES,
  type AdminToken,
  ensureAdminToken,
  newAdminSecret,
  sameSecret,
  verifyAdmin,
} from './admin-token.ts';
export {
  type CreatedToken,
  type CreateTokenInput,
  type Principal,
  type TokenInfo,
  TokenService,
  type TokenServiceOptions,
} from './tokens.ts';
