// Event objects of the shapes Hono's WSEvents handlers receive, typed without the DOM lib (Node 20
// has Event but no CloseEvent, and its MessageEvent is not the DOM's), so the package's types check
// in any Node project.

/** What a message event carries: text as a string, binary as an ArrayBuffer (Hono's WSMessageReceive). */
export type WsMessageData = string | Blob | ArrayBufferLike

/** A socket's state, as `WebSocket.readyState`: connecting, open, closing, closed. */
export type WsReadyState = 0 | 1 | 2 | 3

/** Options of `ws.send()` (Hono's SendOptions). */
export interface WsSendOptions {
  /** Compress this message (with permessage-deflate negotiated). */
  compress?: boolean
}

export class WsCloseEvent extends Event {
  readonly code: number
  readonly reason: string
  readonly wasClean: boolean
  constructor(code: number, reason: string) {
    super('close')
    this.code = code
    this.reason = reason
    this.wasClean = code !== 1006
  }
}

export class WsErrorEvent extends Event {
  readonly error: unknown
  readonly message: string
  constructor(error: unknown) {
    super('error')
    this.error = error
    this.message = error instanceof Error ? error.message : String(error)
  }
}

/**
 * The `message` event: `data` is a string for text and an ArrayBuffer for binary, as with
 * `binaryType = 'arraybuffer'`. A plain object rather than a DOM MessageEvent: constructing
 * one of those per message costs more than the rest of the receive path.
 */
export class WsMessageEvent {
  readonly type: string = 'message'
  readonly data: WsMessageData
  constructor(data: WsMessageData) {
    this.data = data
  }
}
