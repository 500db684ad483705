import type { StreamPosition } from './position.js'

/**
 * A message prepared once and written unchanged to every peer of a transport ("frame once,
 * write many"). Create it with `prepareFrame()`; each transport frames `data` the first time one
 * of its peers sends it and keeps those bytes in `wire` for all the others.
 */
export interface PreparedFrame {
  /** The payload: text (a serialized JSON message) or binary application data. */
  readonly data: string | Uint8Array
  /** Whether the payload goes out as a binary WebSocket message. */
  readonly binary: boolean
  /** A volatile frame may be dropped for a slow peer instead of closing it. */
  readonly volatile: boolean
  /** The framed bytes per transport, filled lazily by the transports. */
  readonly wire: { ws?: Buffer; wsDeflate?: Buffer; sse?: Buffer }
  /**
   * Where a hub message stands in its topic's stream (SSE turns it into the `id:` cursor); on a
   * batch of one topic's messages, where the last one stands.
   */
  readonly position?: FramePosition
  /**
   * Set on a batch (`prepareBatch`): several messages written together, in order. A transport
   * writes the concatenation of their framed bytes at once (one syscall instead of one per
   * message), or sends them one by one when it cannot.
   */
  readonly parts?: readonly PreparedFrame[]
}

/** Where a hub message stands: its topic and its position in the topic's stream. */
export interface FramePosition extends StreamPosition {
  readonly topic: string
}

export interface PrepareFrameOptions {
  /** The topic position of a hub message. */
  position?: FramePosition
  /** @default true for a Uint8Array, false for a string */
  binary?: boolean
  /** @default false */
  volatile?: boolean
}

/** Prepares `data` once for any number of `peer.send()` calls. */
export const prepareFrame = (data: string | Uint8Array, options: PrepareFrameOptions = {}): PreparedFrame => {
  const binary = options.binary ?? typeof data !== 'string'
  const volatile = options.volatile ?? false
  // Two literal shapes rather than `position: undefined`, so frames without one stay small.
  return options.position
    ? { data, binary, volatile, wire: {}, position: options.position }
    : { data, binary, volatile, wire: {} }
}

/**
 * Several prepared frames that go to the same peers, in order, written as one. `data` of a batch
 * is empty: transports read `parts`.
 */
export const prepareBatch = (frames: readonly PreparedFrame[]): PreparedFrame => {
  if (frames.length === 0) throw new Error('prepareBatch: no frames')
  if (frames.length === 1) return frames[0]!
  const volatile = frames.every((frame) => frame.volatile)
  // Hub messages of one topic: the batch stands where its last message does (found once here,
  // not by every peer that writes it).
  const topic = frames[0]!.position?.topic
  const oneTopic =
    topic !== undefined && frames.every((frame) => !frame.parts && frame.position?.topic === topic)
  return oneTopic
    ? {
        data: '',
        binary: false,
        volatile,
        wire: {},
        parts: frames,
        position: frames[frames.length - 1]!.position!,
      }
    : { data: '', binary: false, volatile, wire: {}, parts: frames }
}

/** The transports a Peer can speak. */
export type Transport = 'ws' | 'sse'

/**
 * One live connection (a WebSocket or an SSE stream), as the hub sees it. `User` is what
 * authentication puts in `c.var.user` on its route.
 */
export interface Peer<User = unknown> {
  readonly id: string
  readonly transport: Transport
  /** What authentication put in `c.var.user` when the connection started. */
  readonly user: User
  /**
   * When the connection's credentials expire (ms since the epoch): the transport ends it then
   * (WebSocket: close 4001, SSE: end of stream). Starts from `c.var.authExpiresAt`; set a later
   * time after a token refresh, or `undefined` for none.
   */
  expiresAt: number | undefined
  /** Bytes queued for this peer and not yet handed to the kernel. */
  readonly bufferedAmount: number
  /** Writes the frame; false when it was dropped (slow consumer) or the peer is closed. */
  send(frame: PreparedFrame): boolean
  close(code?: number, reason?: string): void
}
