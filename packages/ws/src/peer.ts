import { performance } from 'node:perf_hooks'
import type { Peer, PreparedFrame } from '@flumen/core'
import { createId, ExpiryTimer } from '@flumen/core'
import type { WebSocket } from 'ws'
import type { WsReadyState, WsSendOptions } from './events.js'
import { WsCloseEvent, WsErrorEvent, WsMessageEvent } from './events.js'
import { deflatedWire, encodeFrame, encodeTextFrame, toBuffer, wsWire } from './frame.js'
import type { ResolvedOptions } from './options.js'

/**
 * The handlers of a WebSocket route: Hono's WSEvents, with a context that also carries the Peer.
 * Declared as methods so that handlers typed for `hono/ws` (with the DOM's MessageEvent and
 * CloseEvent) are accepted as they are, while these types need no DOM lib.
 */
export interface WebSocketEvents<User = unknown> {
  onOpen?(event: Event, ws: FlumenWSContext<User>): void | Promise<void>
  onMessage?(event: WsMessageEvent, ws: FlumenWSContext<User>): void | Promise<void>
  onClose?(event: WsCloseEvent, ws: FlumenWSContext<User>): void | Promise<void>
  onError?(event: Event, ws: FlumenWSContext<User>): void | Promise<void>
  /**
   * A message dropped by the rate limit (a Flumen extension of Hono's WSEvents): answer it in the
   * route's own protocol (the hub replies with the message's `id`). Without it each dropped message
   * is answered `{"type":"error","code":"RATE_LIMITED","message":"Too many messages"}`.
   */
  onRateLimited?(data: string | ArrayBuffer, ws: FlumenWSContext<User>): void
}

/** Counters of one route, for metrics. */
export interface WebSocketStats {
  /** Sockets open now. */
  readonly connections: number
  /** Messages received (those the rate limit dropped included). */
  received: number
  /** Frames written (a batch of messages is one frame write). */
  sent: number
  /** Volatile frames dropped for slow consumers. */
  dropped: number
  /** Sockets closed with 4008 because their send buffer went over `maxBufferedBytes`. */
  slowConsumers: number
  /** Inbound messages dropped by the rate limit. */
  rateLimited: number
  /** Sockets terminated because they did not answer a ping in time. */
  heartbeatTimeouts: number
}

/** What a peer needs of its route: options, counters, a logger. */
export interface RouteState<User = unknown> {
  readonly options: ResolvedOptions
  readonly stats: WebSocketStats
  logError(err: unknown): void
  onPeerClosed(peer: WsPeer<User>): void
}

// The parts of a `ws` socket used to write prepared frames straight to the TCP socket. They are
// private to `ws` 8 and checked before use: when they look different, `ws.send` is used instead.
interface WsInternals {
  _socket?: { write(data: Buffer): boolean }
  _sender?: { _state?: number }
  _extensions?: {
    'permessage-deflate'?: {
      params?: { server_no_context_takeover?: boolean; server_max_window_bits?: number }
    }
  }
}

/** How frames reach a peer's socket: as they are, compressed once for every peer, or through `ws`. */
type WireMode = 'plain' | 'shared-deflate' | 'ws'

const closeGraceMs = 2_000
const noCompression = { compress: false }
const rateLimitedReply = JSON.stringify({ type: 'error', code: 'RATE_LIMITED', message: 'Too many messages' })

/**
 * The `ws` argument of the handlers: the shape of Hono's WSContext (so hono/ws code ports
 * unchanged), plus the connection's Peer. Everything is read from the peer on demand, so a
 * connection carries one small object rather than a URL, closures and a copy of its state.
 */
export class FlumenWSContext<User = unknown> {
  readonly peer: WsPeer<User>
  private parsedUrl: URL | undefined

  constructor(peer: WsPeer<User>) {
    this.peer = peer
  }

  get raw(): WebSocket {
    return this.peer.ws
  }

  get readyState(): WsReadyState {
    return this.peer.ws.readyState as WsReadyState
  }

  get url(): URL {
    this.parsedUrl ??= new URL(this.peer.url)
    return this.parsedUrl
  }

  get protocol(): string | null {
    return this.peer.ws.protocol || null
  }

  /** Always 'arraybuffer': binary messages arrive as ArrayBuffer. */
  get binaryType(): 'arraybuffer' {
    return 'arraybuffer'
  }

  send(source: string | ArrayBuffer | Uint8Array, options?: WsSendOptions): void {
    this.peer.sendData(source, options)
  }

  close(code?: number, reason?: string): void {
    this.peer.close(code, reason)
  }
}

/** One WebSocket connection: a Peer for the hub, the target of the route's handlers. */
export class WsPeer<User = unknown> implements Peer<User> {
  readonly id: string = createId()
  readonly transport = 'ws' as const
  readonly context: FlumenWSContext<User>
  /** Set while an async onOpen runs: messages wait for it, in order. */
  private opening: Promise<void> | undefined
  private tokens: number
  private refilledAt: number
  private strikes = 0
  private killTimer: NodeJS.Timeout | undefined
  /** Created when credentials with an expiry are set: most sockets never need one. */
  private expiry: ExpiryTimer | undefined
  /** Whether a pong (or the connection itself) came after the last heartbeat ping. */
  alive = true

  constructor(
    readonly ws: WebSocket,
    readonly user: User,
    private readonly events: WebSocketEvents<User>,
    private readonly route: RouteState<User>,
    /** The request URL of the upgrade. */
    readonly url: string,
  ) {
    this.context = new FlumenWSContext(this)
    const limit = route.options.rateLimit
    this.tokens = limit ? limit.burst : 0
    this.refilledAt = limit ? performance.now() : 0
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount
  }

  get expiresAt(): number | undefined {
    return this.expiry?.expiresAt
  }

  set expiresAt(at: number | undefined) {
    if (at === undefined && !this.expiry) return
    this.expiry ??= new ExpiryTimer(() => this.close(4001, 'Token expired'))
    this.expiry.expiresAt = at
  }

  /** Runs onOpen; messages that arrive before an async onOpen settles are delivered after it. */
  open(): void {
    const result = this.call('onOpen', new Event('open'))
    if (result) this.opening = result.finally(() => (this.opening = undefined))
  }

  send(frame: PreparedFrame): boolean {
    if (this.ws.readyState !== 1) return false
    const sent = this.writeFrame(frame)
    // One frame (a batch included) counts once, whichever path wrote it.
    if (sent) this.route.stats.sent++
    return sent
  }

  private writeFrame(frame: PreparedFrame): boolean {
    const mode = this.wireMode()
    const socket = (this.ws as WebSocket & WsInternals)._socket
    if (mode === 'ws' || !socket) return this.sendThroughWs(frame)
    const threshold = this.route.options.deflateThreshold
    const wire = mode === 'plain' || threshold === false ? wsWire(frame) : deflatedWire(frame, threshold)
    if (!this.hasRoomFor(wire.length, frame.volatile)) return false
    socket.write(wire)
    return true
  }

  /**
   * Frames may go to the TCP socket directly when the `ws` sender is idle (nothing of its own
   * queued, so bytes cannot overtake each other): as they are without compression, or compressed
   * once for all when the peer negotiated permessage-deflate with no server context takeover and
   * the full window (the route offers that); anything else goes through `ws`.
   */
  private wireMode(): WireMode {
    const internals: WsInternals = this.ws as WebSocket & WsInternals
    if (internals._sender?._state !== 0) return 'ws'
    const deflate = internals._extensions?.['permessage-deflate']
    if (!deflate) return 'plain'
    const params = deflate.params
    return params?.server_no_context_takeover === true &&
      (params.server_max_window_bits === undefined || params.server_max_window_bits === 15)
      ? 'shared-deflate'
      : 'ws'
  }

  /** The TCP socket when data may be written to it uncompressed (see wireMode). */
  private directSocket(): WsInternals['_socket'] {
    return this.wireMode() === 'plain' ? (this.ws as WebSocket & WsInternals)._socket : undefined
  }

  /** The path for sockets whose frames `ws` must build itself (compression, a busy sender). */
  private sendThroughWs(frame: PreparedFrame): boolean {
    if (frame.parts) {
      let sent = false
      for (const part of frame.parts) sent = this.sendThroughWs(part) || sent
      return sent
    }
    const size = typeof frame.data === 'string' ? frame.data.length : frame.data.byteLength
    if (!this.hasRoomFor(size, frame.volatile)) return false
    this.ws.send(frame.data, { binary: frame.binary })
    return true
  }

  /** `ws.send()` of the WSContext: the same send-buffer limit as prepared frames. */
  sendData(data: string | ArrayBuffer | Uint8Array, options?: WsSendOptions): void {
    if (this.ws.readyState !== 1) return
    // A string's length stands in for its UTF-8 size: the limit is a bound, not an account.
    const size = typeof data === 'string' ? data.length : data.byteLength
    if (!this.hasRoomFor(size, false)) return
    const socket = this.directSocket()
    if (socket) {
      // Framed here in one buffer and written once, as prepared frames are (ws would write a header
      // and the payload as two pieces).
      socket.write(
        typeof data === 'string'
          ? encodeTextFrame(data)
          : encodeFrame(data instanceof ArrayBuffer ? Buffer.from(data) : toBuffer(data), true),
      )
    } else if (options?.compress === false) this.ws.send(data, noCompression)
    else this.ws.send(data)
    this.route.stats.sent++
  }

  close(code?: number, reason?: string): void {
    const ws = this.ws
    if (ws.readyState === 2 || ws.readyState === 3) return
    ws.close(code, reason)
    // A peer that does not answer the close frame (a stalled reader) is cut off.
    this.killTimer = setTimeout(() => ws.terminate(), closeGraceMs)
    this.killTimer.unref()
  }

  /** Entry point of the shared 'message' listener. */
  receive(data: Buffer, isBinary: boolean): void {
    this.route.stats.received++
    // A Buffer from `ws` is never over shared memory.
    const payload = isBinary
      ? (data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer)
      : data.toString()
    if (this.route.options.rateLimit && !this.takeToken()) {
      this.rateLimited(payload)
      return
    }
    const event = new WsMessageEvent(payload)
    if (this.opening) {
      this.opening = this.opening.then(() => void this.call('onMessage', event))
    } else {
      this.call('onMessage', event)
    }
  }

  /** Entry point of the shared 'close' listener. */
  closed(code: number, reason: Buffer): void {
    clearTimeout(this.killTimer)
    this.expiry?.clear()
    this.route.onPeerClosed(this)
    this.call('onClose', new WsCloseEvent(code, reason.toString()))
  }

  /**
   * Entry point of the shared 'error' listener: protocol errors of the client (a message over
   * maxPayload, a bad frame) go to onError when there is one; `ws` closes the socket either way,
   * and they are not the server's errors to log.
   */
  failed(err: unknown): void {
    if (this.events.onError) this.report(err)
  }

  private hasRoomFor(size: number, volatile: boolean): boolean {
    if (this.ws.bufferedAmount + size <= this.route.options.maxBufferedBytes) return true
    if (volatile) {
      this.route.stats.dropped++
      return false
    }
    this.route.stats.slowConsumers++
    this.close(4008, 'Slow consumer')
    return false
  }

  private takeToken(): boolean {
    const limit = this.route.options.rateLimit
    if (!limit) return true
    const now = performance.now()
    this.tokens = Math.min(
      limit.burst,
      this.tokens + ((now - this.refilledAt) / 1000) * limit.messagesPerSecond,
    )
    this.refilledAt = now
    if (this.tokens >= 1) {
      this.tokens -= 1
      this.strikes = 0
      return true
    }
    this.route.stats.rateLimited++
    if (++this.strikes > limit.burst) this.close(1008, 'Rate limit exceeded')
    return false
  }

  /** Every dropped message is answered, so a client waiting on a reply never waits for ever. */
  private rateLimited(payload: string | ArrayBuffer): void {
    if (this.ws.readyState !== 1) return
    const onRateLimited = this.events.onRateLimited
    if (!onRateLimited) {
      this.sendData(rateLimitedReply)
      return
    }
    try {
      onRateLimited(payload, this.context)
    } catch (err) {
      this.report(err)
    }
  }

  /** Calls a handler; a throw or a rejection goes to onError (or the route's logger). */
  private call(
    name: 'onOpen' | 'onMessage' | 'onClose',
    event: Event | WsMessageEvent | WsCloseEvent,
  ): Promise<void> | undefined {
    const handler = this.events[name] as ((event: unknown, ws: FlumenWSContext<User>) => unknown) | undefined
    if (!handler) return undefined
    try {
      const result = handler(event, this.context)
      if (result instanceof Promise) return result.then(undefined, (err: unknown) => this.report(err))
    } catch (err) {
      this.report(err)
    }
    return undefined
  }

  private report(err: unknown): void {
    const onError = this.events.onError
    if (!onError) {
      this.route.logError(err)
      return
    }
    try {
      const result = onError(new WsErrorEvent(err), this.context)
      if (result instanceof Promise) result.catch((failure: unknown) => this.route.logError(failure))
    } catch (failure) {
      this.route.logError(failure)
    }
  }
}
