// What every live transport route (WebSocket, SSE) does the same way: a connection slot per open
// connection (route, IP and user caps), the user and credential expiry of the request, the route's
// peers and counters, one timer per route while it has peers (heartbeats), and drain at shutdown.
import type { Context } from 'hono'
import { bindingsOf, userOf } from './app.js'
import type { ConnectionLimitOptions } from './connection-limits.js'
import { ConnectionLimiter } from './connection-limits.js'
import { credentialExpiry } from './expiry.js'
import type { FlumenPlugin, FlumenServer } from './plugins.js'
import { drainConnections } from './plugins.js'

/** How a route's connections end at shutdown: asked to close, then forced at the deadline. */
export interface LiveRouteShutdown<P> {
  /** Plugin name (`flumen-ws`, `flumen-sse`). */
  readonly name: string
  close(peer: P): void
  terminate(peer: P): void
  /** The route's timers stopped (its last connection closed, or shutdown): clear what `every` started. */
  idle?(): void
}

/** What a request brings to a new connection. */
export interface Admission {
  /** What authentication put in `c.var.user`. */
  readonly user: unknown
  /** When the request's credentials expire (ms since the epoch), if they do. */
  readonly expiresAt: number | undefined
  readonly server: FlumenServer
  /** Gives the slot back (the handshake failed before a peer was added). */
  release(): void
}

export class LiveRoute<P> {
  /** The route's open connections. */
  readonly peers: Set<P> = new Set()
  readonly plugin: FlumenPlugin
  private readonly limiter: ConnectionLimiter
  private readonly slots = new Map<P, () => void>()
  private readonly timers: { intervalMs: number; tick: () => void; timer: NodeJS.Timeout | undefined }[] = []

  constructor(
    private readonly owner: string,
    limits: ConnectionLimitOptions,
    private readonly shutdown: LiveRouteShutdown<P>,
  ) {
    this.limiter = new ConnectionLimiter(limits, owner)
    this.plugin = {
      name: shutdown.name,
      drain: (signal) => drainConnections(this.peers, signal, shutdown.close, shutdown.terminate),
      stop: () => this.stopTimers(),
    }
  }

  /**
   * Takes a connection slot for the request before anything is awaited (so handshakes in flight
   * count against each other; 503 or 429 past a cap) and registers the route with the server that
   * serves it, so its connections drain at shutdown.
   */
  admit(c: Context): Admission {
    const { flumen } = bindingsOf(c)
    if (!flumen) throw new Error(`${this.owner} needs serve() from @flumen/core`)
    const release = this.limiter.acquire(c)
    flumen.register(this.plugin)
    return { user: userOf(c), expiresAt: credentialExpiry(c), server: flumen, release }
  }

  /** The connection opened: it holds the admission's slot until `remove`. */
  add(peer: P, admission: Admission): void {
    this.slots.set(peer, admission.release)
    this.peers.add(peer)
    for (const entry of this.timers) {
      if (entry.timer) continue
      entry.timer = setInterval(entry.tick, entry.intervalMs)
      entry.timer.unref()
    }
  }

  /** The connection closed (once or more): its slot is given back; timers stop with the last one. */
  remove(peer: P): void {
    this.slots.get(peer)?.()
    this.slots.delete(peer)
    if (!this.peers.delete(peer)) return
    if (this.peers.size === 0) this.stopTimers()
  }

  /** Runs `tick` every `intervalMs` while the route has connections (one timer for all of them). */
  every(intervalMs: number, tick: () => void): void {
    this.timers.push({ intervalMs, tick, timer: undefined })
  }

  private stopTimers(): void {
    for (const entry of this.timers) {
      clearInterval(entry.timer)
      entry.timer = undefined
    }
    this.shutdown.idle?.()
  }
}
