import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { userOf } from '@flumen/core'
import type { Context } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
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
  /**
   * Where revoked sessions are remembered until they would have expired (`revoke()`, sign out).
   * The default keeps them in this process: with several processes, give them one shared store
   * (a Redis key per session id with its TTL, say), or a cookie revoked on one works on the others.
   * @default an in-memory store
   */
  revocations?: RevocationStore
}

/** Remembers revoked session ids until their cookies would have expired anyway. */
export interface RevocationStore {
  revoke(sessionId: string, expiresAt: number): void | Promise<void>
  isRevoked(sessionId: string): boolean | Promise<boolean>
}

/** Revoked session ids in memory, each forgotten once its cookie would have expired. */
export const memoryRevocations = (): RevocationStore & { readonly size: number } => {
  const revoked = new Map<string, number>()
  let sweptAt = 0
  const sweep = (now: number): void => {
    // At most once a minute: an amortized walk, no timer to keep or stop.
    if (now - sweptAt < 60_000) return
    sweptAt = now
    for (const [id, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(id)
  }
  return {
    get size() {
      return revoked.size
    },
    revoke(sessionId, expiresAt) {
      sweep(Date.now())
      revoked.set(sessionId, expiresAt)
    },
    isRevoked(sessionId) {
      const expiresAt = revoked.get(sessionId)
      return expiresAt !== undefined && expiresAt > Date.now()
    },
  }
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
  /** Removes the cookie from the browser (it stays valid if it was copied: see `revoke`). */
  clear(c: Context): void
  /**
   * Signs out for good: the request's session is revoked (a copy of its cookie no longer works,
   * in every process that shares `revocations`) and the cookie is removed from the browser.
   */
  revoke(c: Context): Promise<void>
}

interface SessionPayload {
  u: AuthUser
  exp: number
  /** Session id, what revocation names. */
  sid: string
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

  const revocations = options.revocations ?? memoryRevocations()
  if (typeof revocations?.revoke !== 'function' || typeof revocations.isRevoked !== 'function')
    throw new Error('sessionCookie: revocations must have revoke() and isRevoked()')

  const sign = (secret: string, body: string): Buffer => createHmac('sha256', secret).update(body).digest()

  /** The signed payload of a cookie value, or undefined. */
  const read = (value: string): SessionPayload | undefined => {
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
    if (payload.exp * 1000 <= Date.now()) return undefined
    return payload
  }

  const verify = (value: string): Authenticated | undefined => {
    const payload = read(value)
    return payload && { user: payload.u, expiresAt: payload.exp * 1000, via: 'cookie' }
  }

  const issue = (c: Context, user: AuthUser): string => {
    if (typeof user?.id !== 'string' || user.id.length === 0)
      throw new Error('sessionCookie.issue: user.id must be a non-empty string')
    const payload: SessionPayload = {
      u: user,
      exp: Math.floor(Date.now() / 1000) + maxAgeSec,
      sid: randomBytes(12).toString('base64url'),
    }
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

  const clear = (c: Context): void => {
    deleteCookie(c, cookieName, {
      path: options.path ?? '/',
      ...(options.domain !== undefined && { domain: options.domain }),
    })
  }

  return {
    name: 'sessionCookie',
    cookieName,
    async authenticate(credentials) {
      const value = credentials.cookie(cookieName)
      const payload = value === undefined ? undefined : read(value)
      if (!payload) return undefined
      // Cookies from before session ids existed have none: they cannot be revoked, only expire.
      if (typeof payload.sid === 'string' && (await revocations.isRevoked(payload.sid))) return undefined
      return { user: payload.u, expiresAt: payload.exp * 1000, via: 'cookie' }
    },
    issue,
    verify,
    rotate(c) {
      const user = userOf(c) as Partial<AuthUser> | undefined
      if (typeof user?.id !== 'string')
        throw new Error('sessionCookie.rotate: no signed-in user on this request')
      return issue(c, user as AuthUser)
    },
    clear,
    async revoke(c) {
      const value = getCookie(c, cookieName)
      const payload = value === undefined ? undefined : read(value)
      if (typeof payload?.sid === 'string') await revocations.revoke(payload.sid, payload.exp * 1000)
      clear(c)
    },
  }
}
