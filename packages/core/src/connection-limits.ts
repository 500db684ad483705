import type { Context } from 'hono'
import type { FlumenBindings } from './app.js'
import { userIdOf } from './app.js'
import { FlumenError } from './errors.js'
import { positiveInteger } from './options.js'

/** How many live connections (WebSocket or SSE) one route holds, in all and per client. */
export interface ConnectionLimitOptions {
  /**
   * Open connections on the route; more get 503.
   * @default 10_000
   */
  maxConnections?: number
  /**
   * Open connections from one client IP on the route; more get 429. Behind a proxy every client
   * has the proxy's address: set `clientIp` to read the one it forwards.
   * @default 1_000
   */
  maxConnectionsPerIp?: number
  /**
   * Open connections of one user (`c.var.user.id`, when authentication ran) on the route; more
   * get 429.
   * @default 32
   */
  maxConnectionsPerUser?: number
  /**
   * The client's address: the socket's by default; behind a trusted proxy, the address it forwards
   * (e.g. the last entry of `X-Forwarded-For` it appends).
   * @default (c) => c.env.incoming.socket.remoteAddress
   */
  clientIp?: (c: Context) => string | undefined
}

export const connectionLimitDefaults = {
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
  maxConnectionsPerUser: 32,
} as const

const socketAddress = (c: Context): string | undefined =>
  (c.env as Partial<FlumenBindings> | undefined)?.incoming?.socket?.remoteAddress

const increment = (counts: Map<string, number>, key: string): void => {
  counts.set(key, (counts.get(key) ?? 0) + 1)
}
const decrement = (counts: Map<string, number>, key: string): void => {
  const count = (counts.get(key) ?? 1) - 1
  if (count > 0) counts.set(key, count)
  else counts.delete(key)
}

/**
 * The connection limits of one live route. A slot is taken when the request is accepted (before any
 * await, so connections opened together count against each other) and given back once, when the
 * connection ends or never opens.
 */
export class ConnectionLimiter {
  private readonly max: number
  private readonly perIp: number
  private readonly perUser: number
  private readonly clientIp: (c: Context) => string | undefined
  private readonly byIp = new Map<string, number>()
  private readonly byUser = new Map<string, number>()
  private open = 0

  constructor(options: ConnectionLimitOptions, owner: string) {
    this.max = positiveInteger(
      owner,
      'maxConnections',
      options.maxConnections ?? connectionLimitDefaults.maxConnections,
    )
    this.perIp = positiveInteger(
      owner,
      'maxConnectionsPerIp',
      options.maxConnectionsPerIp ?? connectionLimitDefaults.maxConnectionsPerIp,
    )
    this.perUser = positiveInteger(
      owner,
      'maxConnectionsPerUser',
      options.maxConnectionsPerUser ?? connectionLimitDefaults.maxConnectionsPerUser,
    )
    this.clientIp = options.clientIp ?? socketAddress
    if (typeof this.clientIp !== 'function') throw new Error(`${owner}: clientIp must be a function`)
  }

  /** Connections holding a slot now. */
  get size(): number {
    return this.open
  }

  /** Takes a slot for this request's connection, or throws 503/429; returns its release (idempotent). */
  acquire(c: Context): () => void {
    if (this.open >= this.max) throw new FlumenError('UNAVAILABLE', 'Too many connections')
    const ip = this.clientIp(c)
    if (ip !== undefined && (this.byIp.get(ip) ?? 0) >= this.perIp)
      throw new FlumenError('RATE_LIMITED', 'Too many connections from this address')
    const user = userIdOf(c)
    if (user !== undefined && (this.byUser.get(user) ?? 0) >= this.perUser)
      throw new FlumenError('RATE_LIMITED', 'Too many connections for this user')
    this.open++
    if (ip !== undefined) increment(this.byIp, ip)
    if (user !== undefined) increment(this.byUser, user)
    let released = false
    return () => {
      if (released) return
      released = true
      this.open--
      if (ip !== undefined) decrement(this.byIp, ip)
      if (user !== undefined) decrement(this.byUser, user)
    }
  }
}
