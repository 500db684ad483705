import type { Context } from 'hono'

/**
 * The authenticated principal, as strategies produce it and `c.var.user` holds it. Apps add
 * their own fields by augmenting this interface:
 * `declare module '@flumen/auth' { interface AuthUser { plan: 'free' | 'pro' } }`.
 */
export interface AuthUser {
  /** Stable identifier (the JWT `sub`, the API key's owner…). */
  id: string
  /** Display name, shown to others by presence. */
  name?: string
  /** Roles that `topicRules` can require. */
  roles?: readonly string[]
}

/**
 * The variables `auth()` sets, for the Env of routes behind it (as hono/jwt exports
 * `JwtVariables`): `new Hono<{ Variables: AuthVariables }>()`. A route that `auth()` precedes in
 * its chain gets them typed without this.
 */
export interface AuthVariables<User = AuthUser> {
  /** Who made the request: `AuthUser`, or `AuthUser | undefined` behind `auth({ optional: true })`. */
  user: User
  /** When the credentials expire (ms since the epoch); live WebSocket and SSE connections end then. */
  authExpiresAt: number | undefined
}

/** The Env of routes behind `auth()`: `createApp<AuthEnv>()`, `upgradeWebSocket<AuthEnv>(…)`. */
export type AuthEnv<User = AuthUser> = { Variables: AuthVariables<User> }

/** What a strategy found: a user, when its credentials expire, and where they came from. */
export interface Authenticated {
  user: AuthUser
  /** Milliseconds since the epoch; live WebSocket and SSE connections end then. */
  expiresAt?: number
  /**
   * `cookie` means a browser sends it by itself, so the Origin of the request is checked
   * (cross-site WebSocket hijacking and CSRF).
   */
  via: 'token' | 'cookie' | 'other'
}

/** Where the bearer token of a request was found. */
export type TokenSource = 'header' | 'protocol' | 'query'

/** The credentials of one request, read once and offered to each strategy in order. */
export interface Credentials {
  /** A bearer token, from the first source that has one. */
  readonly token: string | undefined
  readonly tokenSource: TokenSource | undefined
  /** A cookie of the request. */
  cookie(name: string): string | undefined
}

/**
 * One way to authenticate. `authenticate` returns undefined when its kind of credential is
 * absent or invalid (the next strategy gets its turn; all failing is one identical 401), and
 * throws only for failures of the server itself (a JWKS endpoint down).
 */
export interface Strategy {
  readonly name: string
  authenticate(credentials: Credentials, c: Context | undefined): Promise<Authenticated | undefined>
}
