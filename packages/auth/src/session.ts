import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { deleteCookie, setCookie } from 'hono/cookie'
import type { Authenticated, AuthUser, Strategy } from './types.js'

export interface SessionCookieOptions {
  /**
   * Signing secrets, each at least 32 characters. The first signs; all verify, so a new secret
   * goes first and an old one stays second until its cookies have expired.
   */
  secret: string | readonly string[]
  /** @default 'flumen_session' */
  name?: string
  /**
   * Lifetime of an issued cookie, in seconds.
   * @default 604800 (7 days)
   */
  maxAgeSec?: number
  /** @default '/' */
  path?: string
  /** @default undefined (host-only) */
  domain?: string
  /** @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None'
  /**
   * Set the Secure attribute; `auto` sets it when the request came over https.
   * @default 'auto'
   */
  secure?: boolean | 'auto'
}

export interface SessionCookie extends Strategy {
  /** The cookie name. */
  readonly cookieName: string
  /** Signs a session for `user` and sets it as an HttpOnly cookie; returns the cookie value. */
  issue(c: Context, user: AuthUser): string
  /** Checks a cookie value: the session, or undefined when tampered with, expired or malformed. */
  verify(value: string): Authenticated | undefined
  /** Issues a fresh cookie (new expiry, current secret) for the signed-in user of `c`. */
  rotate(c: Context): string
  /** Removes the cookie from the browser (sign out). */
  clear(c: Context): void
}

interface SessionPayload {
  u: AuthUser
  exp: number
}

const version = 'v1'
const maxCookieBytes = 4000 // browsers keep about 4 KiB per cookie

/**
 * Signed (HMAC-SHA256), not encrypted, session cookies: the user object is readable by whoever
 * holds the cookie, so keep secrets out of it. `HttpOnly`, `SameSite=Lax` by default.
 */
export const sessionCookie = (options: SessionCookieOptions): SessionCookie => {
  const secrets = typeof options.secret === 'string' ? [options.secret] : [...options.secret]
  if (secrets.length === 0 || secrets.some((secret) => typeof secret !== 'string' || secret.length < 32))
    throw new Error('sessionCookie: every secret must be a string of at least 32 characters')
  const cookieName = options.name ?? 'flumen_session'
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName))
    throw new Error('sessionCookie: name must be a cookie token')
  const maxAgeSec = options.maxAgeSec ?? 604_800
  if (!Number.isInteger(maxAgeSec) || maxAgeSec < 1)
    throw new Error('sessionCookie: maxAgeSec must be a positive integer')
  const sameSite = options.sameSite ?? 'Lax'
  const secureOption = options.secure ?? 'auto'
  if (sameSite === 'None' && secureOption === false)
    throw new Error('sessionCookie: sameSite None needs secure cookies')

  const sign = (secret: string, body: string): Buffer => createHmac('sha256', secret).update(body).digest()

  const verify = (value: string): Authenticated | undefined => {
    const parts = value.split('.')
    if (parts.length !== 3 || parts[0] !== version) return undefined
    const body = `${parts[0]}.${parts[1]}`
    const signature = Buffer.from(parts[2]!, 'base64url')
    if (signature.length !== 32) return undefined
    // Every secret is tried (no early exit), each comparison in constant time.
    let valid = false
    for (const secret of secrets) valid = timingSafeEqual(sign(secret, body), signature) || valid
    if (!valid) return undefined
    let payload: SessionPayload
    try {
      payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as SessionPayload
    } catch {
      return undefined
    }
    if (typeof payload?.exp !== 'number' || typeof payload.u?.id !== 'string') return undefined
    const expiresAt = payload.exp * 1000
    if (expiresAt <= Date.now()) return undefined
    return { user: payload.u, expiresAt, via: 'cookie' }
  }

  const issue = (c: Context, user: AuthUser): string => {
    if (typeof user?.id !== 'string' || user.id.length === 0)
      throw new Error('sessionCookie.issue: user.id must be a non-empty string')
    const payload: SessionPayload = { u: user, exp: Math.floor(Date.now() / 1000) + maxAgeSec }
    const body = `${version}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
    const value = `${body}.${sign(secrets[0]!, body).toString('base64url')}`
    if (value.length + cookieName.length > maxCookieBytes)
      throw new Error('sessionCookie.issue: the user object is too large for a cookie')
    const secure = secureOption === 'auto' ? new URL(c.req.url).protocol === 'https:' : secureOption
    setCookie(c, cookieName, value, {
      httpOnly: true,
      sameSite,
      secure,
      path: options.path ?? '/',
      maxAge: maxAgeSec,
      ...(options.domain !== undefined && { domain: options.domain }),
    })
    return value
  }

  return {
    name: 'sessionCookie',
    cookieName,
    async authenticate(credentials) {
      const value = credentials.cookie(cookieName)
      return value === undefined ? undefined : verify(value)
    },
    issue,
    verify,
    rotate(c) {
      const user = c.var.user
      if (!user) throw new Error('sessionCookie.rotate: no signed-in user on this request')
      return issue(c, user)
    },
    clear(c) {
      deleteCookie(c, cookieName, {
        path: options.path ?? '/',
        ...(options.domain !== undefined && { domain: options.domain }),
      })
    },
  }
}
