import { createHash, timingSafeEqual } from 'node:crypto'
import type { AuthUser, Strategy } from './types.js'

export interface ApiKeyOptions {
  /** Keys and the user each one stands for. Each key at least 16 characters. */
  keys?: Readonly<Record<string, AuthUser>>
  /** Or a lookup of your own (a database); undefined refuses the key. */
  verify?: (key: string) => AuthUser | undefined | Promise<AuthUser | undefined>
  /**
   * Header carrying the key; a bearer token (any token source) is also tried.
   * @default 'x-api-key'
   */
  header?: string
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Static API keys or bearer tokens, compared in constant time. */
export const apiKey = (options: ApiKeyOptions): Strategy => {
  if ((options.keys === undefined) === (options.verify === undefined))
    throw new Error('apiKey: give exactly one of keys or verify')
  const header = (options.header ?? 'x-api-key').toLowerCase()
  // Keys are compared as SHA-256 digests: equal length, so timingSafeEqual applies to any key.
  const table = Object.entries(options.keys ?? {}).map(([key, user]) => {
    if (key.length < 16) throw new Error('apiKey: every key must be at least 16 characters')
    if (typeof user?.id !== 'string') throw new Error('apiKey: every key needs a user with a string id')
    return { digest: digest(key), user }
  })
  const lookup =
    options.verify ??
    ((key: string): AuthUser | undefined => {
      const presented = digest(key)
      let found: AuthUser | undefined
      // No early exit: the time taken does not depend on which key matched, or whether one did.
      for (const entry of table) if (timingSafeEqual(entry.digest, presented)) found = entry.user
      return found
    })
  return {
    name: 'apiKey',
    async authenticate(credentials, c) {
      const key = c?.req.header(header) ?? credentials.token
      if (key === undefined || key.length === 0 || key.length > 1024) return undefined
      const user = await lookup(key)
      return user ? { user, via: 'token' } : undefined
    },
  }
}
