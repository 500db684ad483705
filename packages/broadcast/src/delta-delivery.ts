// Messages as deltas (docs/protocol.md, "Deltas"): which peers can take one, and the delta frame
// of a message, computed once per message for every delta peer of its topic.
import type { Peer, PreparedFrame, StreamPosition } from '@flumen/core'
import { prepareFrame } from '@flumen/core'
import { createDelta } from './delta.js'
import type { EngineMessage } from './engine.js'
import type { PendingDelivery } from './topics.js'

/** The delta encoding a subscribe may ask for (`"delta":"fossil"`), as Centrifugo names it. */
export const deltaEncoding: string = 'fossil'

/**
 * Data longer than this goes in full: the encoder's time grows with the data, and one publisher's
 * large messages should not cost every topic's delivery.
 */
export const maxDeltaDataLength: number = 64 * 1024

/** Delta peers of a topic and the message each has last: its next delta's base (none yet: undefined). */
export type DeltaBases<User> = Map<Peer<User>, StreamPosition | undefined>

/** Whether `message` comes right after `base` in the same stream. */
export const follows = (base: StreamPosition, message: StreamPosition): boolean =>
  base.epoch === message.epoch && base.offset === message.offset - 1

/** `{"type":"message",…,"delta":"…"}`: the message's data as a delta against the previous one's. */
const deltaEnvelope = (message: EngineMessage, topicJson: string, delta: string): string =>
  `{"type":"message","topic":${topicJson},"delta":${JSON.stringify(delta)},"epoch":"${message.epoch}","offset":${message.offset}}`

/** The message's delta frame (made on first use), or its full frame when a delta does not pay. */
export const deltaFrame = (delivery: PendingDelivery, topicJson: string): PreparedFrame => {
  if (delivery.delta) return delivery.delta
  const { message, previous } = delivery
  let frame = delivery.frame
  if (previous && message.data.length <= maxDeltaDataLength && previous.data.length <= maxDeltaDataLength) {
    const delta = createDelta(previous.data, message.data)
    if (delta !== undefined && delta.length < message.data.length)
      frame = prepareFrame(deltaEnvelope(message, topicJson, delta), {
        position: { topic: message.topic, epoch: message.epoch, offset: message.offset },
      })
  }
  delivery.delta = frame
  return frame
}
