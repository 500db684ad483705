import { createPublicKey, type KeyObject } from 'node:crypto'
import type { JWK, JWTPayload, JWTVerifyGetKey } from 'jose'
import { createRemoteJWKSet, errors, jwtVerify } from 'jose'
import type { AuthUser, Strategy } from './types.js'

const hmacAlgorithms = ['HS256', 'HS384', 'HS512'] as const
const asymmetricAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const

export type JwtAlgorithm = (typeof hmacAlgorithms)[number] | (typeof asymmetricAlgorithms)[number]

export interface JwksOptions {
  url: string | URL
  /**
   * How long fetched keys are used before the set is fetched again.
   * @default 600000 (10 minutes)
   */
  cacheMaxAgeMs?: number
  /**
   * After a fetch, how long an unknown `kid` waits before it may trigger another fetch (keys
   * rotated at the issuer are picked up then).
   * @default 30000
   */
  cooldownMs?: number
  /** @default 5000 */
  timeoutMs?: number
}

export interface JwtOptions {
  /** Shared secret for HS256/384/512: at least 32 bytes. */
  secret?: string | Uint8Array
  /** Public key for RS/PS/ES/EdDSA: a PEM (SPKI) string, a JWK or a KeyObject. */
  publicKey?: string | JWK | KeyObject
  /** Keys from a JWKS endpoint, matched by `kid`, cached and refreshed on rotation. */
  jwks?: string | URL | JwksOptions
  /**
   * Accepted `alg` values; a token with any other (including `none`) is refused.
   * @default ['HS256'] with `secret`; required with `publicKey` or `jwks`
   */
  algorithms?: readonly JwtAlgorithm[]
  /** Required `iss` (one of). */
  issuer?: string | readonly string[]
  /** Required `aud` (one of). */
  audience?: string | readonly string[]
  /**
   * Leeway for `exp` and `nbf`, in seconds.
   * @default 5
   */
  clockToleranceSec?: number
  /**
   * Claims every token must have.
   * @default ['exp', 'sub'] (a token without `exp` never expires)
   */
  requiredClaims?: readonly string[]
  /**
   * Maps verified claims to the user; undefined refuses the token.
   * @default `{ id: sub, name, roles }` (name and roles only when they are a string / string array)
   */
  toUser?: (payload: JWTPayload) => AuthUser | undefined
  /** Server-side failures (JWKS unreachable). Never receives the token. @default console.error */
  logError?: (err: unknown) => void
}

const defaultToUser = (payload: JWTPayload): AuthUser | undefined => {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) return undefined
  const user: AuthUser = { id: payload.sub }
  if (typeof payload.name === 'string') user.name = payload.name
  if (Array.isArray(payload.roles) && payload.roles.every((role) => typeof role === 'string'))
    user.roles = payload.roles as string[]
  return user
}

// A client's bad token, as opposed to the server failing to check it.
const isTokenError = (err: unknown): boolean =>
  err instanceof errors.JOSEError &&
  !(err instanceof errors.JWKSTimeout) &&
  !(err instanceof errors.JWKSInvalid) &&
  !(err instanceof errors.JWKInvalid)

/**
 * JSON Web Tokens (verified with `jose`): a pinned algorithm list, `exp`/`nbf` with clock
 * tolerance, `iss`/`aud`, and keys from a secret, a public key or a JWKS endpoint.
 */
export const jwt = (options: JwtOptions): Strategy => {
  const sources = [options.secret, options.publicKey, options.jwks].filter((source) => source !== undefined)
  if (sources.length !== 1) throw new Error('jwt: give exactly one of secret, publicKey or jwks')
  const algorithms = options.algorithms ?? (options.secret !== undefined ? ['HS256'] : undefined)
  if (!algorithms || algorithms.length === 0)
    throw new Error('jwt: algorithms is required with publicKey or jwks (e.g. ["RS256"])')
  const allowed: readonly string[] = options.secret !== undefined ? hmacAlgorithms : asymmetricAlgorithms
  for (const alg of algorithms) {
    // Mixing HMAC and public-key algorithms is what makes "alg confusion" attacks possible.
    if (!allowed.includes(alg))
      throw new Error(
        `jwt: algorithm ${alg} does not fit ${options.secret !== undefined ? 'a secret' : 'a public key'}`,
      )
  }
  const clockTolerance = options.clockToleranceSec ?? 5
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0)
    throw new Error('jwt: clockToleranceSec must be a non-negative number')
  const toUser = options.toUser ?? defaultToUser
  const logError = options.logError ?? ((err: unknown) => console.error('[flumen/auth]', err))

  let key: Uint8Array | KeyObject | JWK | JWTVerifyGetKey
  if (options.secret !== undefined) {
    const secret =
      typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret
    if (secret.byteLength < 32) throw new Error('jwt: secret must be at least 32 bytes')
    key = secret
  } else if (options.publicKey !== undefined) {
    key = typeof options.publicKey === 'string' ? createPublicKey(options.publicKey) : options.publicKey
  } else {
    const jwks = options.jwks as string | URL | JwksOptions
    const config: JwksOptions = typeof jwks === 'string' || jwks instanceof URL ? { url: jwks } : jwks
    key = createRemoteJWKSet(new URL(config.url), {
      cacheMaxAge: config.cacheMaxAgeMs ?? 600_000,
      cooldownDuration: config.cooldownMs ?? 30_000,
      timeoutDuration: config.timeoutMs ?? 5_000,
    })
  }
  const verifyOptions = {
    algorithms: [...algorithms],
    clockTolerance,
    requiredClaims: [...(options.requiredClaims ?? ['exp', 'sub'])],
    ...(options.issuer !== undefined && { issuer: options.issuer as string | string[] }),
    ...(options.audience !== undefined && { audience: options.audience as string | string[] }),
  }

  return {
    name: 'jwt',
    async authenticate(credentials) {
      const token = credentials.token
      // Three base64url parts; anything else is not worth parsing.
      if (token === undefined || !/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) return undefined
      let payload: JWTPayload
      try {
        // The overloads of jwtVerify differ only in the key type; one call site serves all.
        payload = (await jwtVerify(token, key as Uint8Array, verifyOptions)).payload
      } catch (err) {
        if (!isTokenError(err)) logError(err)
        return undefined
      }
      const user = toUser(payload)
      if (!user) return undefined
      return payload.exp === undefined
        ? { user, via: 'token' }
        : { user, via: 'token', expiresAt: (payload.exp + clockTolerance) * 1000 }
    },
  }
}
