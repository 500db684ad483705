import type { ConnectionLimitOptions, UserOf } from '@flumen/core'
import { bindingsOf, LiveRoute, positiveInteger, responseAlreadySent } from '@flumen/core'
import type { Context, Env, MiddlewareHandler } from 'hono'
import type { SseRouteState, SseStats } from './peer.js'
import { SsePeer } from './peer.js'

/**
 * Options of an SSE route. Connection limits (`maxConnections` 10,000 → 503,
 * `maxConnectionsPerIp` 1,000 and `maxConnectionsPerUser` 32 → 429, `clientIp`) are core's
 * `ConnectionLimitOptions`.
 */
export interface SseOptions extends ConnectionLimitOptions {
  /**
   * A comment line (`: ping`) is written to every stream this often, so proxies keep it open;
   * `false` turns it off.
   * @default 15_000
   */
  heartbeatMs?: number | false
  /**
   * The reconnection delay sent first (`retry:`).
   * @default 2_000
   */
  retryMs?: number
  /**
   * Bytes queued for one stream before it counts as a slow reader and is closed (volatile frames
   * are dropped instead).
   * @default 1_048_576 (1 MiB)
   */
  maxBufferedBytes?: number
}

/** An SSE route handler, with its live streams and counters. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface SseRoute<E extends Env = any, User = UserOf<E>> extends MiddlewareHandler<E> {
  readonly peers: ReadonlySet<SsePeer<User>>
  readonly stats: Readonly<SseStats>
}

const streamHeaders: Record<string, string> = {
  'content-type': 'text/event-stream; charset=utf-8',
  // no-transform: compression middleware and proxies must not buffer the stream.
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
}

/**
 * An SSE route: `handler(stream, c)` runs first (subscribe, authorize, send the first events) and
 * the stream starts when it returns; if it throws, the client gets a plain HTTP error (a 401 or 403
 * is never a stream). Writes go straight to the Node response: each event's bytes are built once
 * and shared by every stream. Needs `serve()` from @flumen/core.
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const sse = <E extends Env = any, User = UserOf<E>>(
  handler: (stream: SsePeer<User>, c: Context<E>) => void | Promise<void>,
  options: SseOptions = {},
): SseRoute<E, User> => {
  if (typeof handler !== 'function') throw new Error('sse: handler must be a function')
  const heartbeatMs =
    options.heartbeatMs === false
      ? false
      : positiveInteger('sse', 'heartbeatMs', options.heartbeatMs ?? 15_000)
  const retryMs = positiveInteger('sse', 'retryMs', options.retryMs ?? 2_000)
  const live = new LiveRoute<SsePeer<User>>('sse', options, {
    name: 'flumen-sse',
    close: (peer) => peer.close(),
    terminate: (peer) => peer.res.destroy(),
  })
  const peers = live.peers
  const stats: SseStats = {
    get connections() {
      return peers.size
    },
    sent: 0,
    dropped: 0,
    slowConsumers: 0,
  }
  if (heartbeatMs)
    live.every(heartbeatMs, () => {
      for (const stream of peers) stream.comment('ping')
    })

  const route: SseRouteState<User> = {
    maxBufferedBytes: positiveInteger('sse', 'maxBufferedBytes', options.maxBufferedBytes ?? 1_048_576),
    stats,
    onPeerClosed: (peer) => live.remove(peer),
  }

  const routeHandler: MiddlewareHandler<E> = async (c) => {
    const { outgoing: res } = bindingsOf(c)
    if (!res) throw new Error('sse() needs serve() from @flumen/core')
    const admission = live.admit(c)
    // What authentication put in c.var.user: the route's Env says its type.
    const peer = new SsePeer<User>(res, admission.user as User, c.req.header('last-event-id'), route)
    live.add(peer, admission)
    if (admission.expiresAt !== undefined) peer.expiresAt = admission.expiresAt
    // One listener for the whole life of the stream: client gone, server ended it, or destroyed.
    res.once('close', () => peer.markClosed())
    try {
      await handler(peer, c)
    } catch (err) {
      peer.markClosed()
      throw err
    }
    if (peer.closed) return alreadySentOrEnd(res)
    // Headers that middleware set before the handler (CORS, cookies) go out with the stream.
    const headers = c.newResponse(null, 200, streamHeaders).headers
    const head: Record<string, string | string[]> = {}
    headers.forEach((value, key) => {
      if (key !== 'set-cookie') head[key] = value
    })
    const cookies = headers.getSetCookie()
    if (cookies.length > 0) head['set-cookie'] = cookies
    // No chunked framing: an event stream ends only with its connection, so the body can be
    // delimited by the close (HTTP/1.1 §6.3). Each write then goes out as it is, without a chunk
    // header and trailer around it.
    res.useChunkedEncodingByDefault = false
    res.shouldKeepAlive = false
    res.writeHead(200, head)
    res.flushHeaders()
    peer.start(`retry: ${retryMs}\n\n`)
    return responseAlreadySent()
  }

  const alreadySentOrEnd = (res: import('node:http').ServerResponse): Response => {
    if (!res.headersSent) res.writeHead(204).end()
    return responseAlreadySent()
  }

  return Object.assign(routeHandler, {
    peers: peers as ReadonlySet<SsePeer<User>>,
    stats: stats as Readonly<SseStats>,
  })
}
