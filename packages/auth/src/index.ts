export type { ApiKeyOptions } from './api-key.js'
export { apiKey } from './api-key.js'
export type { AuthMiddleware, AuthOptions } from './auth.js'
export { auth, custom } from './auth.js'
export type { JwksOptions, JwtAlgorithm, JwtOptions } from './jwt.js'
export { jwt } from './jwt.js'
export type { AuthorizeRequest, RuleAction, TopicRule } from './rules.js'
export { topicRules } from './rules.js'
export type { RevocationStore, SessionCookie, SessionCookieOptions } from './session.js'
export { memoryRevocations, sessionCookie } from './session.js'
export type {
  AuthEnv,
  Authenticated,
  AuthUser,
  AuthVariables,
  Credentials,
  Strategy,
  TokenSource,
} from './types.js'
