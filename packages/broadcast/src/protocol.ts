// Wire protocol v1 (docs/protocol.md): envelopes the server sends, built by concatenation where
// they carry already-serialized data, so a payload is never parsed and serialized again.
import type { ErrorIssue, FlumenErrorCode } from '@flumen/core'
import { deltaEncoding } from './delta-delivery.js'
import type { EngineMessage, StreamPosition, VolatileMessage } from './engine.js'

/** The WebSocket subprotocol of protocol v1. */
export const protocolName = 'flumen.v1'

/** `{"type":"message",…}` for a stored message; `topicJson` is the topic as a JSON string. */
export const messageEnvelope = (message: EngineMessage, topicJson: string): string =>
  `{"type":"message","topic":${topicJson},"data":${message.data},"epoch":"${message.epoch}","offset":${message.offset}}`

/** `{"type":"message",…,"volatile":true}`: a volatile message has no epoch or offset. */
export const volatileEnvelope = (message: VolatileMessage, topicJson: string): string =>
  `{"type":"message","topic":${topicJson},"data":${message.data},"volatile":true}`

export const ackEnvelope = (id: number, fields: Record<string, unknown> = {}): string =>
  JSON.stringify({ type: 'ack', id, ...fields })

/** The answer to a subscribe: the topic's position, and `"delta":"fossil"` when deltas follow. */
export const subscribeAck = (
  id: number | undefined,
  { recovered, position, delta }: { recovered: boolean; position: StreamPosition; delta: boolean },
): string =>
  JSON.stringify({
    type: 'ack',
    id,
    recovered,
    epoch: position.epoch,
    offset: position.offset,
    ...(delta && { delta: deltaEncoding }),
  })

export const errorEnvelope = (
  id: number | undefined,
  code: FlumenErrorCode,
  message: string,
  issues?: readonly ErrorIssue[],
): string =>
  JSON.stringify({
    type: 'error',
    ...(id !== undefined && { id }),
    code,
    message,
    ...(issues !== undefined && { issues }),
  })

export const resultEnvelope = (id: number, dataJson: string): string =>
  `{"type":"result","id":${id},"data":${dataJson}}`

export const pongEnvelope: string = '{"type":"pong"}'

/** An inbound message after JSON parsing; every field is checked before use. */
export interface InboundMessage {
  type?: unknown
  id?: unknown
  topic?: unknown
  since?: unknown
  data?: unknown
  method?: unknown
  token?: unknown
  echo?: unknown
  key?: unknown
  delta?: unknown
  volatile?: unknown
}

/** An idempotency key of a publish: what a client may send. */
export const publishKeyPattern: RegExp = /^[A-Za-z0-9_-]{1,64}$/

/**
 * Whether JSON text nests arrays and objects deeper than `maxDepth`, found by one scan before it is
 * parsed: a document nested thousands deep parses, but exhausts the stack wherever it is walked or
 * serialized again.
 */
export const nestsDeeperThan = (text: string, maxDepth: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i)
    if (inString) {
      if (char === 92)
        i++ // a backslash escapes the next character
      else if (char === 34) inString = false
    } else if (char === 34) inString = true
    else if (char === 123 || char === 91) {
      if (++depth > maxDepth) return true
    } else if (char === 125 || char === 93) depth--
  }
  return false
}

/** Parses `{ epoch, offset }`; undefined when absent, null when malformed. */
export const parsePosition = (value: unknown): StreamPosition | undefined | null => {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null) return null
  const { epoch, offset } = value as { epoch?: unknown; offset?: unknown }
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 64) return null
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return null
  return { epoch, offset }
}
