import type { EngineListener, EngineMessage, StreamPosition } from '@flumen/broadcast'
import { covers, createId } from '@flumen/core'
import { entriesToMessages, parseMessage, topicKeys } from './codec.js'
import type { RedisClient } from './connection.js'
import type { Scripts } from './scripts.js'

export interface DeliveryContext {
  readonly prefix: string
  /** How long an epoch a read creates lives without a publish. */
  readonly readEpochTtlMs: number
  ready(): Promise<{ client: RedisClient; scripts: Scripts }>
  listener(): EngineListener | undefined
  logError(err: unknown): void
}

/**
 * What this node hands the hub, per topic it subscribed to: every message once and in offset order,
 * whatever pub/sub does. Pub/sub is fast but may lose messages (a failover, a reconnect): a gap in
 * the offsets, a new epoch, or a periodic position check that finds the stream's head ahead of what
 * was delivered is filled from the stream, with the live messages of the topic held meanwhile. A
 * head behind what was delivered means Redis lost history that clients saw: the topic gets a new
 * epoch (never the same offset twice), which clients see as a reset.
 */
export class Delivery {
  /** The last message handed to the hub, per topic. */
  private readonly delivered = new Map<string, StreamPosition>()
  /** The head when the topic was subscribed, until a message is delivered: what checks compare. */
  private readonly baseline = new Map<string, StreamPosition>()
  /** Topics being filled from the stream: their live payloads wait here, in arrival order. */
  private readonly filling = new Map<string, string[]>()
  /** Checks in flight, one per topic. */
  private readonly checking = new Map<string, Promise<void>>()
  private readonly topics = new Set<string>()

  constructor(private readonly context: DeliveryContext) {}

  /** This node serves the topic now: its head becomes the baseline of the checks. */
  subscribed(topic: string): void {
    this.topics.add(topic)
    void this.check(topic)
  }

  unsubscribed(topic: string): void {
    this.topics.delete(topic)
    this.delivered.delete(topic)
    this.baseline.delete(topic)
    this.filling.delete(topic)
  }

  /** What this node knows of the topic's stream (publishes pass it on: a head behind it is a loss). */
  known(topic: string): StreamPosition | undefined {
    return this.delivered.get(topic) ?? this.baseline.get(topic)
  }

  /** A payload from the topic's channel. */
  onPayload(topic: string, payload: string): void {
    if (!this.topics.has(topic)) return
    const held = this.filling.get(topic)
    if (held) {
      held.push(payload)
      return
    }
    const message = parseMessage(topic, payload)
    if (!message) return
    const last = this.delivered.get(topic) ?? this.baseline.get(topic)
    // A gap (pub/sub lost some), or another epoch (its first messages may be missing): fill first.
    if (last && (last.epoch !== message.epoch || message.offset > last.offset + 1)) {
      this.filling.set(topic, [payload])
      void this.fill(topic, last.epoch === message.epoch ? last.offset : 0)
      return
    }
    this.deliver(message)
  }

  /** Compares every topic's head with what was delivered, a few at a time. */
  async checkAll(): Promise<void> {
    const topics = [...this.topics]
    for (let i = 0; i < topics.length; i += 16)
      await Promise.all(topics.slice(i, i + 16).map((t) => this.check(t)))
  }

  /** Compares one topic's head with what was delivered: fills a gap, or marks a loss. */
  check(topic: string): Promise<void> {
    let running = this.checking.get(topic)
    if (running) return running
    running = this.compare(topic)
      .catch((err: unknown) => this.context.logError(err))
      .finally(() => this.checking.delete(topic))
    this.checking.set(topic, running)
    return running
  }

  private async compare(topic: string): Promise<void> {
    const { client, scripts } = await this.context.ready()
    const k = topicKeys(this.context.prefix, topic)
    const [epoch, offsetText] = await client.hmget(k.meta, 'e', 'o')
    // Nothing there (never published, expired, or lost with everything): the next publish starts anew.
    if (!epoch || !this.topics.has(topic) || this.filling.has(topic)) return
    const head = { epoch, offset: Number(offsetText ?? 0) }
    const known = this.known(topic)
    if (!known) {
      this.baseline.set(topic, head)
      return
    }
    if (head.epoch !== known.epoch) {
      this.filling.set(topic, [])
      await this.fill(topic, 0)
    } else if (head.offset > known.offset) {
      this.filling.set(topic, [])
      await this.fill(topic, known.offset)
    } else if (head.offset < known.offset) {
      await scripts.guard(k.meta, k.stream, k.sizes, known.epoch, known.offset, createId())
    }
  }

  /** Reads the topic's stream after `since` and delivers it, then what was held meanwhile. */
  private async fill(topic: string, since: number): Promise<void> {
    try {
      const { scripts } = await this.context.ready()
      const k = topicKeys(this.context.prefix, topic)
      const [epoch, , entries] = await scripts.history(
        k.meta,
        k.stream,
        k.sizes,
        createId(),
        since,
        this.context.readEpochTtlMs,
      )
      for (const message of entriesToMessages(topic, epoch, entries)) this.deliver(message)
    } catch (err) {
      this.context.logError(err)
    } finally {
      const held = this.filling.get(topic) ?? []
      this.filling.delete(topic)
      for (const payload of held) {
        const message = parseMessage(topic, payload)
        if (message) this.deliver(message)
      }
    }
  }

  private deliver(message: EngineMessage): void {
    const last = this.delivered.get(message.topic)
    if (last && covers(last, message)) {
      // Seen: a fill and pub/sub overlapped — or Redis went back under this epoch: look.
      if (message.offset < last.offset) void this.check(message.topic)
      return
    }
    this.delivered.set(message.topic, { epoch: message.epoch, offset: message.offset })
    this.baseline.delete(message.topic)
    this.context.listener()?.onMessage(message)
  }
}
