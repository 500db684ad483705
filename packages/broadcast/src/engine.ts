import type { StreamPosition } from '@flumen/core'

export type { StreamPosition }

/** A message as engines store and deliver it. */
export interface EngineMessage {
  readonly topic: string
  /** The payload, already serialized as JSON text. */
  readonly data: string
  readonly epoch: string
  readonly offset: number
  /** Peer id of the publisher, skipped at delivery; absent when the publisher asked for its own copy. */
  readonly origin?: string
}

/**
 * A volatile message: delivered to the nodes subscribed to its topic now, never stored, with no
 * offset; a subscriber that is away or slow misses it (typing indicators, progress, cursors).
 */
export interface VolatileMessage {
  readonly topic: string
  /** The payload, already serialized as JSON text. */
  readonly data: string
  /** Peer id of the publisher, skipped at delivery. */
  readonly origin?: string
}

export interface HistoryResult {
  /**
   * True when every message after `since` is in `messages`; false when the gap left the
   * history window or the epoch changed (the client must resync).
   */
  readonly recovered: boolean
  /** Messages after `since`, in offset order (empty when not recovered or no `since`). */
  readonly messages: readonly EngineMessage[]
  /** The stream's position when the history was read: messages up to it are in `messages`. */
  readonly position: StreamPosition
}

/** One connection present in a topic. */
export interface PresenceMember {
  /** The connection (peer id); a user with two tabs has two. */
  readonly connectionId: string
  /** Who it is: presence events count a user once however many connections it has. */
  readonly userId: string
  /** What others see of the user (JSON), e.g. `{ id, name }`. */
  readonly info: unknown
}

export interface PresenceChange {
  readonly topic: string
  readonly join?: readonly PresenceMember[]
  readonly leave?: readonly PresenceMember[]
}

export interface EnginePublishOptions {
  /** Peer id of the publisher: delivery skips it. */
  origin?: string
  /**
   * Idempotency key: a publish whose key was used on this topic within the engine's dedupe window
   * (and the same epoch) is not stored or delivered again; it resolves with the first one's
   * position. Clients send one with each publish and resend it after a reconnect.
   */
  key?: string
}

/** How long engines remember idempotency keys, and how many per topic. */
export const dedupeDefaults: { readonly windowMs: 120_000; readonly maxKeysPerTopic: 100_000 } = {
  windowMs: 120_000,
  maxKeysPerTopic: 100_000,
}

/** What an engine calls back into the hub with: messages and presence changes from every node. */
export interface EngineListener {
  onMessage(message: EngineMessage): void
  /** Volatile messages; a listener without it (a tool reading stored messages) does not get them. */
  onVolatile?(message: VolatileMessage): void
  onPresence(change: PresenceChange): void
}

/**
 * The hub's storage and transport between nodes. `memoryEngine()` serves one process;
 * `redisEngine()` (from @flumen/broadcast-redis) the same contract across many. Every engine
 * passes the conformance suite in `@flumen/broadcast/conformance`.
 */
export interface Engine {
  readonly name: string
  /** Called once by the hub before anything else. */
  attach(listener: EngineListener): void
  /**
   * Appends to the topic's history and delivers to every node subscribed to the topic (this one
   * included, through `onMessage`). Resolves once stored; rejects when it could not be.
   */
  publish(topic: string, data: string, options?: EnginePublishOptions): Promise<EngineMessage>
  /**
   * Delivers to every node subscribed to the topic now (this one included, through `onVolatile`)
   * without storing it or taking an offset: no history, no recovery, no order with `publish`.
   * Resolves once handed on; rejects when it could not be (the engine is closed or unreachable).
   */
  publishVolatile(topic: string, data: string, options?: { origin?: string }): Promise<void>
  /** This node wants the topic's messages and presence changes. */
  subscribe(topic: string): Promise<void>
  unsubscribe(topic: string): Promise<void>
  /** Messages after `since` (none without it) and the current position, read atomically. */
  history(topic: string, since?: StreamPosition): Promise<HistoryResult>
  /**
   * How many of the topic's messages are kept for recovery now, without reading them (for admin
   * tools: `@flumen/inspector`). Optional: an engine that cannot count cheaply leaves it out. Redis
   * counts its stream (up to `history.size`), whose messages past the age or bytes bound go at the
   * next publish: an upper bound there.
   */
  historyLength?(topic: string): Promise<number>
  /**
   * The snapshot kept under `key`, or undefined. Snapshots are state built from a topic that must
   * outlive its history window (`@flumen/yjs` keeps each document's), kept beside the streams with no
   * age bound, as durable as the engine (memory: the process; SQLite: the file; Redis: its
   * persistence). Optional, with `saveSnapshot`: an engine without them keeps nothing past the window.
   */
  loadSnapshot?(key: string): Promise<string | undefined>
  /** Keeps `value` under `key`, replacing what was there. */
  saveSnapshot?(key: string, value: string): Promise<void>
  presenceAdd(topic: string, member: PresenceMember): Promise<void>
  presenceRemove(topic: string, connectionId: string): Promise<void>
  presenceList(topic: string): Promise<readonly PresenceMember[]>
  close(): Promise<void>
  /**
   * Whether the engine can take a publish now (Redis: its command connection is ready). Left out by
   * engines that are available whenever they are open (memory, SQLite). For health checks and metrics.
   */
  readonly available?: boolean
}

/** How long and how much history each topic keeps. */
export interface HistoryOptions {
  /**
   * Messages kept per topic for recovery; 0 turns history off. Mostly the bytes and the age bound
   * the window: 1,000 would be one second at 1,000 messages/s, so clients away longer would get
   * resets under load.
   * @default 100_000
   */
  size?: number
  /**
   * Age after which a message leaves the history.
   * @default 600_000 (10 minutes)
   */
  ttlMs?: number
  /**
   * Bytes of history per topic (payload characters plus 64 per message); the oldest go first.
   * @default 4_194_304 (4 MiB)
   */
  maxBytes?: number
}

export const historyDefaults: {
  readonly size: 100_000
  readonly ttlMs: 600_000
  readonly maxBytes: 4_194_304
} = {
  size: 100_000,
  ttlMs: 600_000,
  maxBytes: 4_194_304,
}

/** Checks history options up front and fills in the defaults. */
export const resolveHistory = (options: HistoryOptions = {}, owner = 'engine'): Required<HistoryOptions> => {
  const size = options.size ?? historyDefaults.size
  const ttlMs = options.ttlMs ?? historyDefaults.ttlMs
  const maxBytes = options.maxBytes ?? historyDefaults.maxBytes
  if (!Number.isInteger(size) || size < 0) throw new Error(`${owner}: history.size must be an integer >= 0`)
  if (!Number.isInteger(ttlMs) || ttlMs < 1)
    throw new Error(`${owner}: history.ttlMs must be a positive integer`)
  if (!Number.isInteger(maxBytes) || maxBytes < 1)
    throw new Error(`${owner}: history.maxBytes must be a positive integer`)
  return { size, ttlMs, maxBytes }
}
