// Event objects of the shapes Hono's WSEvents handlers receive. Node 20 has Event and
// MessageEvent but no CloseEvent or ErrorEvent.
import type { WSMessageReceive } from 'hono/ws'

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
  readonly type = 'message'
  readonly data: WSMessageReceive
  constructor(data: WSMessageReceive) {
    this.data = data
  }
}
