import { createId } from '@flumen/core'
import type {
  Engine,
  EngineListener,
  EngineMessage,
  HistoryOptions,
  HistoryResult,
  PresenceMember,
  StreamPosition,
} from './engine.js'
import { resolveHistory } from './engine.js'

interface Stream {
  readonly epoch: string
  offset: number
  /** Ring of the newest messages with the time each was stored. */
  readonly messages: EngineMessage[]
  readonly storedAt: number[]
}

export interface MemoryEngineOptions {
  history?: HistoryOptions
}

/**
 * The in-process engine: history in memory (bounded by `history.size` and `history.ttlMs`),
 * delivery by a direct call. Epochs are new for each process, so a client that recovers after a
 * restart gets `recovered: false`.
 */
export const memoryEngine = (options: MemoryEngineOptions = {}): Engine => {
  const history = resolveHistory(options.history, 'memoryEngine')
  const streams = new Map<string, Stream>()
  const subscribed = new Set<string>()
  const presence = new Map<string, Map<string, PresenceMember>>()
  let listener: EngineListener | undefined
  let closed = false

  const streamOf = (topic: string): Stream => {
    let stream = streams.get(topic)
    if (!stream) {
      stream = { epoch: createId(), offset: 0, messages: [], storedAt: [] }
      streams.set(topic, stream)
    }
    return stream
  }

  /** Drops messages past the size or age bound, oldest first. */
  const trim = (stream: Stream, now: number): void => {
    let drop = Math.max(0, stream.messages.length - history.size)
    while (drop < stream.storedAt.length && now - stream.storedAt[drop]! > history.ttlMs) drop++
    if (drop > 0) {
      stream.messages.splice(0, drop)
      stream.storedAt.splice(0, drop)
    }
  }

  const assertOpen = (): void => {
    if (closed) throw new Error('memoryEngine: closed')
  }

  return {
    name: 'memory',
    attach(next) {
      listener = next
    },
    async publish(topic, data, publishOptions = {}) {
      assertOpen()
      const stream = streamOf(topic)
      stream.offset++
      const message: EngineMessage =
        publishOptions.origin === undefined
          ? { topic, data, epoch: stream.epoch, offset: stream.offset }
          : { topic, data, epoch: stream.epoch, offset: stream.offset, origin: publishOptions.origin }
      if (history.size > 0) {
        const now = Date.now()
        stream.messages.push(message)
        stream.storedAt.push(now)
        // Trimming in batches keeps publish O(1) amortized: splice only when 1/8 over the bound.
        if (stream.messages.length > history.size + (history.size >> 3)) trim(stream, now)
      }
      if (subscribed.has(topic)) listener?.onMessage(message)
      return message
    },
    async subscribe(topic) {
      assertOpen()
      subscribed.add(topic)
    },
    async unsubscribe(topic) {
      subscribed.delete(topic)
    },
    async history(topic, since?: StreamPosition): Promise<HistoryResult> {
      assertOpen()
      const stream = streamOf(topic)
      const position = { epoch: stream.epoch, offset: stream.offset }
      if (!since) return { recovered: true, messages: [], position }
      if (since.epoch !== stream.epoch || since.offset > stream.offset) {
        return { recovered: false, messages: [], position }
      }
      if (since.offset === stream.offset) return { recovered: true, messages: [], position }
      trim(stream, Date.now())
      const oldest = stream.messages[0]?.offset
      if (oldest === undefined || oldest > since.offset + 1)
        return { recovered: false, messages: [], position }
      return { recovered: true, messages: stream.messages.slice(since.offset + 1 - oldest), position }
    },
    async presenceAdd(topic, member) {
      assertOpen()
      let members = presence.get(topic)
      if (!members) {
        members = new Map()
        presence.set(topic, members)
      }
      members.set(member.connectionId, member)
      if (subscribed.has(topic)) listener?.onPresence({ topic, join: [member] })
    },
    async presenceRemove(topic, connectionId) {
      const members = presence.get(topic)
      const member = members?.get(connectionId)
      if (!members || !member) return
      members.delete(connectionId)
      if (members.size === 0) presence.delete(topic)
      if (subscribed.has(topic)) listener?.onPresence({ topic, leave: [member] })
    },
    async presenceList(topic) {
      return [...(presence.get(topic)?.values() ?? [])]
    },
    async close() {
      closed = true
      streams.clear()
      subscribed.clear()
      presence.clear()
    },
  }
}
