import type { AllowedOrigins, Peer } from '@flumen/core'
import { FlumenError, originAllowList } from '@flumen/core'
import type { Context, MiddlewareHandler } from 'hono'
import { getCookie } from 'hono/cookie'
import type { Authenticated, AuthUser, AuthVariables, Credentials, Strategy, TokenSource } from './types.js'

export interface AuthOptions {
  /** Tried in order; the first that recognises the request's credentials wins. */
  strategies: readonly Strategy[]
  /**
   * Origins (`https://app.example.com`) that may use cookie credentials for WebSocket upgrades,
   * SSE streams and state-changing requests, besides the request's own origin. A function
   * decides by itself.
   * @default [] (same origin only)
   */
  allowedOrigins?: AllowedOrigins
  /**
   * Accept `?access_token=<token>` (for clients that can set neither headers nor subprotocols).
   * Tokens in URLs end up in access logs, proxies and Referer headers: keep them short-lived.
   * @default false
   */
  queryToken?: boolean
  /**
   * Accept a `bearer.<token>` entry in `Sec-WebSocket-Protocol` on upgrades (browsers cannot set
   * headers on WebSocket). The route must speak an app protocol, which is the one echoed.
   * @default true
   */
  protocolToken?: boolean
  /**
   * Requests without any credentials pass with no `c.var.user`; wrong credentials are still 401.
   * @default false
   */
  optional?: boolean
  /**
   * The realm of `WWW-Authenticate`.
   * @default 'flumen'
   */
  realm?: string
}

/**
 * The middleware, plus token verification for live connections (the hub's `authenticate`). Its Env
 * types `c.var.user` on the routes it precedes: `User` is `AuthUser`, or `AuthUser | undefined`
 * when authentication is optional.
 */
export interface AuthMiddleware<User extends AuthUser | undefined = AuthUser>
  extends MiddlewareHandler<{ Variables: AuthVariables<User> }> {
  /**
   * Verifies a token with the strategies (as `{"type":"auth"}` on a live socket does) and, given
   * the peer, moves its expiry to the new token's. A token of another user is refused.
   * Throws `FlumenError('UNAUTHORIZED')`.
   */
  verifyToken(token: string, peer?: Peer): Promise<AuthUser>
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS'])
const bearerPrefix = 'bearer.'
// RFC 6750 b64token: what a bearer token may contain.
const tokenPattern = /^[\w\-.~+/]+=*$/
const maxTokenLength = 8192

const wellFormed = (token: unknown): token is string =>
  typeof token === 'string' && token.length > 0 && token.length <= maxTokenLength && tokenPattern.test(token)

const bearerFromHeader = (value: string | undefined): string | undefined => {
  if (value === undefined) return undefined
  const match = /^Bearer +(\S+) *$/i.exec(value)
  return match?.[1]
}

const bearerFromProtocols = (value: string | undefined): string | undefined => {
  if (value === undefined) return undefined
  for (const protocol of value.split(',')) {
    const trimmed = protocol.trim()
    if (trimmed.startsWith(bearerPrefix)) return trimmed.slice(bearerPrefix.length)
  }
  return undefined
}

/**
 * Authentication for every kind of route: HTTP handlers, WebSocket upgrades, SSE streams and
 * uploads. Sets `c.var.user` (and `c.var.authExpiresAt`, which live connections honour), or
 * answers 401 with `WWW-Authenticate` — one identical answer whatever was wrong.
 */
export function auth(options: AuthOptions & { optional: true }): AuthMiddleware<AuthUser | undefined>
export function auth(options: AuthOptions & { optional?: false }): AuthMiddleware<AuthUser>
export function auth(options: AuthOptions): AuthMiddleware<AuthUser | undefined>
export function auth(options: AuthOptions): AuthMiddleware<AuthUser> | AuthMiddleware<AuthUser | undefined> {
  const strategies = options.strategies
  if (!Array.isArray(strategies) || strategies.length === 0)
    throw new Error('auth: strategies must be a non-empty array')
  for (const strategy of strategies)
    if (typeof strategy?.authenticate !== 'function')
      throw new Error('auth: each strategy needs an authenticate function (use jwt(), sessionCookie()…)')
  const realm = options.realm ?? 'flumen'
  if (!/^[\x20-\x7e]*$/.test(realm) || realm.includes('"'))
    throw new Error('auth: realm must be printable ASCII without quotes')
  const isListedOrigin = originAllowList('auth', options.allowedOrigins ?? [])
  const queryToken = options.queryToken ?? false
  const protocolToken = options.protocolToken ?? true
  const optional = options.optional ?? false

  const unauthorized = (tokenGiven: boolean): FlumenError =>
    new FlumenError('UNAUTHORIZED', 'Unauthorized', {
      headers: {
        'WWW-Authenticate': tokenGiven
          ? `Bearer realm="${realm}", error="invalid_token"`
          : `Bearer realm="${realm}"`,
      },
    })

  const originAllowed = (c: Context, origin: string): boolean =>
    origin === new URL(c.req.url).origin || isListedOrigin(origin)

  const credentialsOf = (c: Context): Credentials => {
    let token: string | undefined
    let tokenSource: TokenSource | undefined
    const take = (value: string | undefined, source: TokenSource): void => {
      if (token === undefined && value !== undefined && value.length > 0) {
        token = value
        tokenSource = source
      }
    }
    take(bearerFromHeader(c.req.header('authorization')), 'header')
    if (protocolToken && c.req.header('upgrade')?.toLowerCase() === 'websocket')
      take(bearerFromProtocols(c.req.header('sec-websocket-protocol')), 'protocol')
    if (queryToken) take(c.req.query('access_token'), 'query')
    let cookies: Record<string, string> | undefined
    return {
      token,
      tokenSource,
      cookie: (name) => {
        cookies ??= getCookie(c)
        return cookies[name]
      },
    }
  }

  const run = async (
    credentials: Credentials,
    c: Context | undefined,
  ): Promise<Authenticated | undefined> => {
    for (const strategy of strategies) {
      const found = await strategy.authenticate(credentials, c)
      if (found) return found
    }
    return undefined
  }

  /**
   * A browser sends cookies by itself, also to requests another site makes it send: such a
   * request must come from an allowed origin when it opens a live connection or changes state.
   * Non-browser clients send neither Origin nor Sec-Fetch-Site and pass (CSRF needs a browser).
   */
  const checkCookieOrigin = (c: Context): void => {
    const origin = c.req.header('origin')
    const live =
      c.req.header('upgrade')?.toLowerCase() === 'websocket' ||
      (c.req.header('accept') ?? '').includes('text/event-stream')
    if (!live && safeMethods.has(c.req.method)) return
    if (origin !== undefined && origin !== 'null') {
      if (!originAllowed(c, origin)) throw new FlumenError('FORBIDDEN', 'Origin not allowed')
      return
    }
    if (origin === 'null') throw new FlumenError('FORBIDDEN', 'Origin not allowed')
    const site = c.req.header('sec-fetch-site')
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw new FlumenError('FORBIDDEN', 'Cross-site request refused')
  }

  const middleware: MiddlewareHandler<{ Variables: AuthVariables<AuthUser | undefined> }> = async (
    c,
    next,
  ) => {
    const credentials = credentialsOf(c)
    const presented = credentials.token !== undefined
    if (presented && !wellFormed(credentials.token)) throw unauthorized(true)
    const found = await run(credentials, c)
    if (!found) {
      // A token that fails is always 401; a missing or stale cookie is anonymous when optional.
      if (optional && !presented) return next()
      throw unauthorized(presented)
    }
    if (found.via === 'cookie') checkCookieOrigin(c)
    c.set('user', found.user)
    c.set('authExpiresAt', found.expiresAt)
    await next()
  }

  const verifyToken = async (token: string, peer?: Peer): Promise<AuthUser> => {
    if (!wellFormed(token)) throw unauthorized(true)
    const found = await run({ token, tokenSource: 'header', cookie: () => undefined }, undefined)
    if (!found || found.via === 'cookie') throw unauthorized(true)
    if (peer) {
      const current = peer.user as Partial<AuthUser> | undefined
      if (current?.id !== undefined && current.id !== found.user.id)
        throw new FlumenError('UNAUTHORIZED', 'The token is for another user')
      peer.expiresAt = found.expiresAt
    }
    return found.user
  }

  return Object.assign(middleware, { verifyToken })
}

/** A strategy of your own: `verify(c)` returns the user (or the full result), or undefined. */
export const custom = (options: {
  name?: string
  verify: (c: Context) => AuthUser | Authenticated | undefined | Promise<AuthUser | Authenticated | undefined>
}): Strategy => {
  if (typeof options?.verify !== 'function') throw new Error('custom: verify must be a function')
  return {
    name: options.name ?? 'custom',
    async authenticate(_credentials, c) {
      if (!c) return undefined // token refresh on a live socket has no request
      const result = await options.verify(c)
      if (!result) return undefined
      return 'user' in result && typeof result.user === 'object'
        ? (result as Authenticated)
        : { user: result as AuthUser, via: 'other' }
    },
  }
}
