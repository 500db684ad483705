import type { Duplex } from 'node:stream'
import type { Admission, UserOf } from '@flumen/core'
import { bindingsOf, FlumenError, LiveRoute } from '@flumen/core'
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
  const heartbeat = resolved.heartbeat
  if (heartbeat && heartbeat.pongTimeoutMs >= heartbeat.intervalMs) {
    throw new Error('upgradeWebSocket: heartbeat.pongTimeoutMs must be shorter than heartbeat.intervalMs')
  }
  let pongTimer: NodeJS.Timeout | undefined
  const live = new LiveRoute<WsPeer<User>>('upgradeWebSocket', options, {
    name: 'flumen-ws',
    close: (peer) => peer.close(1001, 'Server shutting down'),
    terminate: (peer) => peer.ws.terminate(),
    idle: () => clearTimeout(pongTimer),
  })
  const peers = live.peers
  const stats: WebSocketStats = {
    get connections() {
      return peers.size
    },
    received: 0,
    sent: 0,
    dropped: 0,
    slowConsumers: 0,
    rateLimited: 0,
    heartbeatTimeouts: 0,
  }

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: resolved.maxPayload,
    // No server context takeover: every message is compressed on its own, so a message sent to many
    // peers is compressed once (see WsPeer.send), and no peer holds a compression window between sends.
    perMessageDeflate:
      resolved.deflateThreshold === false
        ? false
        : { threshold: resolved.deflateThreshold, serverNoContextTakeover: true },
    handleProtocols: (offered) => resolved.protocols.find((protocol) => offered.has(protocol)) ?? false,
  })

  // One ping round for every socket of the route; one that has not answered by the pong timeout goes.
  if (heartbeat)
    live.every(heartbeat.intervalMs, () => {
      for (const peer of peers) {
        peer.alive = false
        peer.ws.ping()
      }
      pongTimer = setTimeout(() => {
        for (const peer of peers) {
          if (!peer.alive) {
            stats.heartbeatTimeouts++
            peer.ws.terminate()
          }
        }
      }, heartbeat.pongTimeoutMs)
      pongTimer.unref()
    })

  const route: RouteState<User> = {
    options: resolved,
    stats,
    logError: (err) => console.error('[flumen/ws] handler failed:', err),
    onPeerClosed: (peer) => live.remove(peer),
  }

  const open = (ws: WebSocket, admission: Admission, events: WebSocketEvents<User>, url: string): void => {
    // What authentication put in c.var.user: the route's Env says its type.
    const peer = new WsPeer<User>(ws, admission.user as User, events, route, url)
    if (admission.expiresAt !== undefined) peer.expiresAt = admission.expiresAt
    ;(ws as PeerSocket)[kPeer] = peer
    live.add(peer, admission)
    ws.on('message', onMessage)
    ws.on('close', onClose)
    ws.on('error', onError)
    if (heartbeat) ws.on('pong', onPong)
    peer.open()
  }

  const handler: MiddlewareHandler<E, string, { outputFormat: 'ws' }> = async (c) => {
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
      throw new FlumenError('UPGRADE_REQUIRED', 'This route only accepts WebSocket connections', {
        headers: { Upgrade: 'websocket' },
      })
    }
    const { upgrade, incoming } = bindingsOf(c)
    if (!upgrade || !incoming) throw new Error('upgradeWebSocket needs serve() from @flumen/core')
    const origin = c.req.header('origin')
    if (origin !== undefined && resolved.isOriginAllowed && !resolved.isOriginAllowed(origin)) {
      throw new FlumenError('FORBIDDEN', 'Origin not allowed')
    }
    const admission = live.admit(c)
    let events: WebSocketEvents<User>
    try {
      events = await createEvents(c)
    } catch (err) {
      admission.release()
      throw err
    }
    const url = c.req.url
    const { socket, head }: { socket: Duplex; head: Buffer } = upgrade
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
          open(ws, admission, events, url)
        })
      } finally {
        wss.off('headers', addHeaders)
        // `ws` refused the handshake itself (a bad key, a socket already gone): no connection.
        if (!opened) admission.release()
      }
    }, admission.release)
    return c.body(null)
  }
  return Object.assign(handler, {
    peers: peers as ReadonlySet<WsPeer<User>>,
    stats: stats as Readonly<WebSocketStats>,
  })
}
