import { createId, FlumenError, positiveInteger } from '@flumen/core'
import { DedupeWindow } from './dedupe.js'
import type {
  Engine,
  EngineListener,
  EngineMessage,
  HistoryOptions,
  HistoryResult,
  StreamPosition,
} from './engine.js'
import { dedupeDefaults, resolveHistory } from './engine.js'
import { HistoryLog } from './history-log.js'
import { LocalPresence } from './local-presence.js'
import { localVolatile } from './local-volatile.js'
import { recoveryOf } from './recovery.js'

interface Stream {
  readonly epoch: string
  offset: number
  readonly log: HistoryLog
  /** Idempotency keys of recent publishes, created with the first publish that has one. */
  keys: DedupeWindow | undefined
}

export interface MemoryEngineOptions {
  history?: HistoryOptions
  /**
   * Topics whose history is kept at once; past it, the topic published to least recently (and not
   * subscribed on this node) is forgotten first.
   * @default 100_000
   */
  maxTopics?: number
  /**
   * Bytes of history across every topic (payload characters plus 64 per message); past it, the
   * oldest messages of the topics published to least recently go first.
   * @default 268_435_456 (256 MiB)
   */
  maxTotalBytes?: number
  /**
   * How often messages older than `history.ttlMs` are dropped and idle topics forgotten.
   * @default 10_000
   */
  sweepIntervalMs?: number
  /**
   * How long a publish's idempotency key is remembered: the same key again within it is the same
   * publish (a client's retry), answered with the first one's offset.
   * @default 120_000
   */
  dedupeWindowMs?: number
}

/** What the memory engine holds now, for metrics and tests. */
export interface MemoryEngineStats {
  /** Topics with state (history or a position): idle topics are forgotten. */
  readonly topics: number
  readonly messages: number
  readonly bytes: number
}

export interface MemoryEngine extends Engine {
  readonly stats: MemoryEngineStats
}

export const memoryEngineDefaults: {
  readonly maxTopics: 100_000
  readonly maxTotalBytes: 268_435_456
  readonly sweepIntervalMs: 10_000
} = { maxTopics: 100_000, maxTotalBytes: 268_435_456, sweepIntervalMs: 10_000 }

/**
 * The in-process engine: history in memory, bounded per topic (`history.size`, `history.maxBytes`,
 * `history.ttlMs`) and in total (`maxTopics`, `maxTotalBytes`); delivery by a direct call.
 *
 * A topic costs nothing until it is published to, and is forgotten once its history aged out and no
 * subscriber is on it: reading it creates no state. Epochs change whenever a topic is forgotten, so
 * a position read before cannot recover across a forgotten history (`recovered: false`), while a
 * position read from a topic that had no messages yet recovers its first ones. Epochs are new for
 * each process: after a restart clients get `recovered: false`.
 */
export const memoryEngine = (options: MemoryEngineOptions = {}): MemoryEngine => {
  const history = resolveHistory(options.history, 'memoryEngine')
  const maxTopics = positiveInteger(
    'memoryEngine',
    'maxTopics',
    options.maxTopics ?? memoryEngineDefaults.maxTopics,
  )
  const maxTotalBytes = positiveInteger(
    'memoryEngine',
    'maxTotalBytes',
    options.maxTotalBytes ?? memoryEngineDefaults.maxTotalBytes,
  )
  const dedupeWindowMs = positiveInteger(
    'memoryEngine',
    'dedupeWindowMs',
    options.dedupeWindowMs ?? dedupeDefaults.windowMs,
  )
  const sweepIntervalMs = positiveInteger(
    'memoryEngine',
    'sweepIntervalMs',
    options.sweepIntervalMs ?? memoryEngineDefaults.sweepIntervalMs,
  )
  /** Streams in order of their last publish: the least recent first. */
  const streams = new Map<string, Stream>()
  /** Snapshots (`saveSnapshot`): they live as long as the process, as the streams do. */
  const snapshots = new Map<string, string>()
  const subscribed = new Set<string>()
  const base = createId()
  /**
   * How many times the topics of each bucket (by hash) were forgotten: part of their epochs, so an
   * epoch is never reused across a forgotten history. Fixed size: forgotten topics cost nothing, and
   * a void position goes stale (a spurious `recovered: false`) only when another topic of its bucket
   * is forgotten.
   */
  const generations = new Uint32Array(65_536)
  let totalBytes = 0
  let totalMessages = 0
  let listener: EngineListener | undefined
  const presence = new LocalPresence(
    () => listener,
    (topic) => subscribed.has(topic),
  )
  let closed = false

  const bucketOf = (topic: string): number => {
    // FNV-1a: cheap, and only run when a topic is created, forgotten or read without state.
    let hash = 0x811c9dc5
    for (let i = 0; i < topic.length; i++) hash = Math.imul(hash ^ topic.charCodeAt(i), 0x01000193)
    return (hash >>> 0) & 0xffff
  }
  const epochOf = (topic: string): string => `${base}-${generations[bucketOf(topic)]!.toString(36)}`
  const forget = (topic: string): void => {
    streams.delete(topic)
    generations[bucketOf(topic)]!++
  }

  const dropOldest = (stream: Stream): void => {
    totalBytes -= stream.log.dropOldest()
    totalMessages--
  }

  /** Forgets a topic with no history and no subscriber on this node. */
  const forgetIfIdle = (topic: string, stream: Stream): boolean => {
    if (stream.log.length > 0 || (stream.keys?.size ?? 0) > 0 || subscribed.has(topic)) return false
    forget(topic)
    return true
  }

  const expire = (stream: Stream, now: number): void => {
    while (stream.log.length > 0 && now - stream.log.oldestStoredAt! > history.ttlMs) dropOldest(stream)
  }

  /** Drops history of the least recently published topics until the total fits. */
  const fitTotal = (): void => {
    for (const [topic, stream] of streams) {
      if (totalBytes <= maxTotalBytes) return
      while (stream.log.length > 0 && totalBytes > maxTotalBytes) dropOldest(stream)
      forgetIfIdle(topic, stream)
    }
  }

  /** A new topic's stream, making room under maxTopics first. */
  const createStream = (topic: string): Stream => {
    if (streams.size >= maxTopics) {
      for (const [name, stream] of streams) {
        if (subscribed.has(name)) continue
        totalBytes -= stream.log.bytes
        totalMessages -= stream.log.length
        forget(name)
        break
      }
      if (streams.size >= maxTopics)
        throw new FlumenError('UNAVAILABLE', `memoryEngine: more than ${maxTopics} topics`)
    }
    const stream: Stream = { epoch: epochOf(topic), offset: 0, log: new HistoryLog(), keys: undefined }
    streams.set(topic, stream)
    return stream
  }

  const sweep = (): void => {
    const now = Date.now()
    for (const [topic, stream] of streams) {
      expire(stream, now)
      stream.keys?.expire(now)
      forgetIfIdle(topic, stream)
    }
  }
  const sweeper = setInterval(sweep, sweepIntervalMs)
  sweeper.unref()

  const assertOpen = (): void => {
    if (closed) throw new Error('memoryEngine: closed')
  }

  return {
    name: 'memory',
    get stats() {
      return { topics: streams.size, messages: totalMessages, bytes: totalBytes }
    },
    attach(next) {
      listener = next
    },
    async publish(topic, data, publishOptions = {}) {
      assertOpen()
      let stream = streams.get(topic)
      if (stream) {
        // Most recently published last: the order bounds evict in.
        streams.delete(topic)
        streams.set(topic, stream)
      } else stream = createStream(topic)
      const key = publishOptions.key
      const now = Date.now()
      if (key !== undefined) {
        const first = stream.keys?.find(key, stream.epoch, now)
        if (first) return { topic, data, ...first }
      }
      stream.offset++
      const message: EngineMessage =
        publishOptions.origin === undefined
          ? { topic, data, epoch: stream.epoch, offset: stream.offset }
          : { topic, data, epoch: stream.epoch, offset: stream.offset, origin: publishOptions.origin }
      if (key !== undefined) {
        stream.keys ??= new DedupeWindow(dedupeWindowMs, dedupeDefaults.maxKeysPerTopic)
        stream.keys.remember(key, { epoch: stream.epoch, offset: stream.offset }, now)
      }
      if (history.size > 0) {
        totalBytes += stream.log.push(message, now)
        totalMessages++
        while (stream.log.length > history.size || stream.log.bytes > history.maxBytes) dropOldest(stream)
        if (totalBytes > maxTotalBytes) fitTotal()
      }
      if (subscribed.has(topic)) listener?.onMessage(message)
      // Nothing kept (history off, or a message over history.maxBytes) and nobody here: no state.
      else if (stream.log.length === 0) forgetIfIdle(topic, stream)
      return message
    },
    ...localVolatile(
      () => listener,
      (topic) => subscribed.has(topic),
      assertOpen,
    ),
    async subscribe(topic) {
      assertOpen()
      subscribed.add(topic)
    },
    async unsubscribe(topic) {
      subscribed.delete(topic)
      const stream = streams.get(topic)
      if (stream) forgetIfIdle(topic, stream)
    },
    async history(topic, since?: StreamPosition): Promise<HistoryResult> {
      assertOpen()
      const stream = streams.get(topic)
      // No state: the topic has had no messages since it was last forgotten (or ever).
      if (!stream) {
        const position = { epoch: epochOf(topic), offset: 0 }
        const recovered = since === undefined || (since.epoch === position.epoch && since.offset === 0)
        return { recovered, messages: [], position }
      }
      return recoveryOf(since, { epoch: stream.epoch, offset: stream.offset }, () => {
        expire(stream, Date.now())
        return stream.log.after(since!.offset)
      })
    },
    async historyLength(topic) {
      assertOpen()
      const stream = streams.get(topic)
      if (!stream) return 0
      expire(stream, Date.now())
      return stream.log.length
    },
    async loadSnapshot(key) {
      assertOpen()
      return snapshots.get(key)
    },
    async saveSnapshot(key, value) {
      assertOpen()
      snapshots.set(key, value)
    },
    ...presence.engineMethods(assertOpen),
    async close() {
      closed = true
      clearInterval(sweeper)
      streams.clear()
      snapshots.clear()
      subscribed.clear()
      presence.clear()
      totalBytes = 0
      totalMessages = 0
    },
  }
}
