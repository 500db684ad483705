import type { Duplex } from 'node:stream'
import type { FlumenPlugin, UserOf } from '@flumen/core'
import {
  bindingsOf,
  ConnectionLimiter,
  credentialExpiry,
  drainConnections,
  FlumenError,
  userOf,
} from '@flumen/core'
import type { Context, Env, MiddlewareHandler } from 'hono'
import type { WebSocket } from 'ws'
import { WebSocketServer } from 'ws'
import type { WebSocketOptions } from './options.js'
import { resolveOptions } from './options.js'
import type { RouteState, WebSocketEvents, WebSocketStats } from './peer.js'
import { WsPeer } from './peer.js'

const kPeer = Symbol('flumen.peer')
type PeerSocket = WebSocket & { [kPeer]: WsPeer<unknown> }

// Listeners shared by every socket: `this` is the socket, so no closure is kept per connection.
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  ;(this as PeerSocket)[kPeer].receive(data, isBinary)
}
function onClose(this: WebSocket, code: number, reason: Buffer): void {
  ;(this as PeerSocket)[kPeer].closed(code, reason)
}
function onError(this: WebSocket, err: Error): void {
  ;(this as PeerSocket)[kPeer].failed(err)
}
function onPong(this: WebSocket): void {
  ;(this as PeerSocket)[kPeer].alive = true
}

/**
 * A WebSocket route handler, with its live peers and counters. Its input says `outputFormat: 'ws'`,
 * as Hono's own upgradeWebSocket does, so `hc<typeof app>` gives the route a `$ws()`.
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface WebSocketRoute<E extends Env = any, User = UserOf<E>>
  extends MiddlewareHandler<E, string, { outputFormat: 'ws' }> {
  /** The route's open connections. */
  readonly peers: ReadonlySet<WsPeer<User>>
  readonly stats: Readonly<WebSocketStats>
}

/**
 * A WebSocket route on the `ws` library that takes Hono's WSEvents, so `hono/ws` code ports
 * unchanged, and sits behind the same middleware as any route: a 401 from auth is a real HTTP
 * 401 and no upgrade happens. `createEvents(c)` runs once per connection, before the upgrade;
 * keep what the handlers need from `c`, not `c` itself, to keep connections light.
 *
 * A plain GET (no `Upgrade: websocket`) gets 426. Needs `serve()` from @flumen/core.
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const upgradeWebSocket = <E extends Env = any, User = UserOf<E>>(
  createEvents: (c: Context<E>) => WebSocketEvents<User> | Promise<WebSocketEvents<User>>,
  options: WebSocketOptions = {},
): WebSocketRoute<E, User> => {
  if (typeof createEvents !== 'function') throw new Error('upgradeWebSocket: createEvents must be a function')
  const resolved = resolveOptions(options)
  const limiter = new ConnectionLimiter(options, 'upgradeWebSocket')
  const heartbeat = resolved.heartbeat
  if (heartbeat && heartbeat.pongTimeoutMs >= heartbeat.intervalMs) {
    throw new Error('upgradeWebSocket: heartbeat.pongTimeoutMs must be shorter than heartbeat.intervalMs')
  }
  const peers = new Set<WsPeer<User>>()
  const stats: WebSocketStats = {
    get connections() {
      return peers.size
    },
    dropped: 0,
    slowConsumers: 0,
    rateLimited: 0,
    heartbeatTimeouts: 0,
  }
  let pingTimer: NodeJS.Timeout | undefined
  let pongTimer: NodeJS.Timeout | undefined

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: resolved.maxPayload,
    perMessageDeflate: resolved.deflateThreshold === false ? false : { threshold: resolved.deflateThreshold },
    handleProtocols: (offered) => resolved.protocols.find((protocol) => offered.has(protocol)) ?? false,
  })

  const sweep = (): void => {
    for (const peer of peers) {
      peer.alive = false
      peer.ws.ping()
    }
    pongTimer = setTimeout(
      () => {
        for (const peer of peers) {
          if (!peer.alive) {
            stats.heartbeatTimeouts++
            peer.ws.terminate()
          }
        }
      },
      heartbeat ? heartbeat.pongTimeoutMs : 0,
    )
    pongTimer.unref()
  }

  const route: RouteState<User> = {
    options: resolved,
    stats,
    logError: (err) => console.error('[flumen/ws] handler failed:', err),
    onPeerClosed: (peer) => {
      peer.releaseSlot?.()
      if (!peers.delete(peer)) return
      if (peers.size === 0) {
        clearInterval(pingTimer)
        clearTimeout(pongTimer)
        pingTimer = undefined
      }
    },
  }

  const plugin: FlumenPlugin = {
    name: 'flumen-ws',
    drain: (signal) =>
      drainConnections(
        peers,
        signal,
        (peer) => peer.close(1001, 'Server shutting down'),
        (peer) => peer.ws.terminate(),
      ),
    stop: () => {
      clearInterval(pingTimer)
      clearTimeout(pongTimer)
    },
  }

  const open = (
    ws: WebSocket,
    user: User,
    expiresAt: number | undefined,
    events: WebSocketEvents<User>,
    url: string,
    releaseSlot: () => void,
  ): void => {
    const peer = new WsPeer<User>(ws, user, events, route, url)
    peer.releaseSlot = releaseSlot
    if (expiresAt !== undefined) peer.expiresAt = expiresAt
    ;(ws as PeerSocket)[kPeer] = peer
    peers.add(peer)
    ws.on('message', onMessage)
    ws.on('close', onClose)
    ws.on('error', onError)
    if (heartbeat) {
      ws.on('pong', onPong)
      if (!pingTimer) {
        pingTimer = setInterval(sweep, heartbeat.intervalMs)
        pingTimer.unref()
      }
    }
    peer.open()
  }

  const handler: MiddlewareHandler<E, string, { outputFormat: 'ws' }> = async (c) => {
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
      throw new FlumenError('UPGRADE_REQUIRED', 'This route only accepts WebSocket connections', {
        headers: { Upgrade: 'websocket' },
      })
    }
    const { upgrade, incoming, flumen } = bindingsOf(c)
    if (!upgrade || !incoming || !flumen) throw new Error('upgradeWebSocket needs serve() from @flumen/core')
    const origin = c.req.header('origin')
    if (origin !== undefined && resolved.isOriginAllowed && !resolved.isOriginAllowed(origin)) {
      throw new FlumenError('FORBIDDEN', 'Origin not allowed')
    }
    // Taken before anything is awaited: handshakes in flight together count against each other.
    const releaseSlot = limiter.acquire(c)
    let events: WebSocketEvents<User>
    try {
      events = await createEvents(c)
    } catch (err) {
      releaseSlot()
      throw err
    }
    // What authentication put in c.var.user: the route's Env says its type.
    const user = userOf(c) as User
    const expiresAt = credentialExpiry(c)
    const url = c.req.url
    const { socket, head }: { socket: Duplex; head: Buffer } = upgrade
    flumen.register(plugin)
    upgrade.accept((headers) => {
      // Headers set by middleware (cookies, request ids, CORS) go out on the 101.
      const addHeaders = (lines: string[]): void => {
        headers.forEach((value, key) => {
          if (key !== 'content-type' && key !== 'content-length') lines.push(`${key}: ${value}`)
        })
      }
      wss.on('headers', addHeaders)
      let opened = false
      try {
        wss.handleUpgrade(incoming, socket, head, (ws) => {
          opened = true
          open(ws, user, expiresAt, events, url, releaseSlot)
        })
      } finally {
        wss.off('headers', addHeaders)
        // `ws` refused the handshake itself (a bad key, a socket already gone): no connection.
        if (!opened) releaseSlot()
      }
    }, releaseSlot)
    return c.body(null)
  }
  return Object.assign(handler, {
    peers: peers as ReadonlySet<WsPeer<User>>,
    stats: stats as Readonly<WebSocketStats>,
  })
}
