// The topics this node has subscribers for, and how their messages reach those subscribers: live
// peers get each turn's messages together; peers still recovering keep them until their history
// is sent; peers that just recovered skip what their history read already covered; peers that
// asked for deltas get each message as a delta against the one before it when they have that one;
// volatile messages go in the same turn's writes, in the order they came, to the live peers that
// are keeping up.
import { performance } from 'node:perf_hooks'
import type { Peer, PreparedFrame, StreamPosition } from '@flumen/core'
import { covers, prepareBatch, prepareFrame } from '@flumen/core'
import type { DeltaBases } from './delta-delivery.js'
import { deltaFrame, follows } from './delta-delivery.js'
import type { Engine, EngineMessage, PresenceChange, VolatileMessage } from './engine.js'
import type { Observers } from './observers.js'
import type { TopicPresence } from './presence.js'
import { applyPresenceChange, connectionsChanged, presenceEnvelope } from './presence.js'
import { messageEnvelope, volatileEnvelope } from './protocol.js'

/** A message and its frames, prepared once for every peer of the topic. */
export interface PendingDelivery {
  readonly message: EngineMessage
  readonly frame: PreparedFrame
  /** The topic's message before this one (offset - 1, same epoch), kept while it has delta peers. */
  readonly previous: EngineMessage | undefined
  /** The delta frame against `previous` (or the full frame when a delta would not be smaller). */
  delta?: PreparedFrame
}

export interface TopicState<User> extends TopicPresence {
  readonly name: string
  readonly topicJson: string
  readonly live: Set<Peer<User>>
  /** Peers between subscribe and the end of their recovery: live messages wait here. */
  readonly recovering: Map<Peer<User>, PendingDelivery[]>
  /** Live peers and the position their history read covered, until a newer message arrives. */
  readonly covered: Map<Peer<User>, StreamPosition>
  /** Messages of this turn not yet written to the live peers (see `flush`). */
  batch: PendingDelivery[] | undefined
  /** Volatile messages of this turn, after the stored ones in `batch` (see `flushVolatile`). */
  volatileBatch: { readonly frame: PreparedFrame; readonly origin: string | undefined }[] | undefined
  /** When the first message now waiting in `batch` or `volatileBatch` came (set while observed). */
  queuedAt: number
  /** Peers that asked for deltas, and the message each has last (the base of its next delta). */
  readonly deltaPeers: DeltaBases<User>
  /** The topic's last message, kept while it has delta peers: the next one's delta base. */
  last: EngineMessage | undefined
  /** Resolves once the engine delivers the topic to this node (and its presence is loaded). */
  readonly ready: Promise<void>
  /** Server code reading the topic (`hub.listen`), each with the messages held while it recovers. */
  readonly listeners: Map<TopicListener, EngineMessage[] | undefined>
}

/** Server code that reads a topic's messages without a connection (`hub.listen`). */
export interface TopicListener {
  /** A stored message, in offset order: first those after `since`, then live ones. */
  onMessage(message: EngineMessage): void
  /** A volatile message, while live. */
  onVolatile?(message: VolatileMessage): void
  /**
   * Connections that joined or left the topic's presence, on any node (each once, `connectionId`
   * included). Those present before the listener came are not reported.
   */
  onPresence?(change: PresenceChange): void
}

/** Counters the topics add to (the hub's stats). */
export interface DeliveryCounters {
  delivered: number
  /** Volatile messages not written to a peer: its send buffer was over the limit. */
  dropped: number
}

export const messageFrame = (message: EngineMessage, topicJson: string): PreparedFrame =>
  prepareFrame(messageEnvelope(message, topicJson), {
    position: { topic: message.topic, epoch: message.epoch, offset: message.offset },
  })

/** A message to deliver; `previous` (offset - 1 of the same epoch) lets it go as a delta. */
export const deliveryOf = (
  message: EngineMessage,
  topicJson: string,
  previous: EngineMessage | undefined,
): PendingDelivery => ({
  message,
  frame: messageFrame(message, topicJson),
  previous: previous && follows(previous, message) ? previous : undefined,
})

export class Topics<User> {
  private readonly topics = new Map<string, TopicState<User>>()
  // Messages that arrive in the same event-loop turn are written together just after it: under
  // load a peer gets several per syscall; an idle hub adds no timer, only the end of the turn.
  private flushQueue: TopicState<User>[] = []

  constructor(
    private readonly engine: Engine,
    private readonly counters: DeliveryCounters,
    private readonly withPresence: boolean,
    private readonly logError: (err: unknown) => void,
    /** A peer with more bytes queued than this misses volatile messages (they would arrive stale). */
    private readonly volatileMaxBufferedBytes: number,
    private readonly observers: Observers,
  ) {}

  get size(): number {
    return this.topics.size
  }

  /** Subscriptions (live and recovering) and presence members over the topics held now. */
  totals(): { subscriptions: number; presenceMembers: number } {
    let subscriptions = 0
    let presenceMembers = 0
    for (const topic of this.topics.values()) {
      subscriptions += topic.live.size + topic.recovering.size
      presenceMembers += topic.connections.size
    }
    return { subscriptions, presenceMembers }
  }

  get(name: string): TopicState<User> | undefined {
    return this.topics.get(name)
  }

  /** Every topic held now. */
  all(): IterableIterator<TopicState<User>> {
    return this.topics.values()
  }

  /** The topic's state, created (and subscribed at the engine) on first use. */
  acquire(name: string): TopicState<User> {
    const existing = this.topics.get(name)
    if (existing) return existing
    const topic: TopicState<User> = {
      name,
      topicJson: JSON.stringify(name),
      live: new Set(),
      recovering: new Map(),
      covered: new Map(),
      batch: undefined,
      volatileBatch: undefined,
      queuedAt: 0,
      deltaPeers: new Map(),
      last: undefined,
      connections: new Map(),
      users: new Map(),
      listeners: new Map(),
      ready: this.engine.subscribe(name).then(async () => {
        if (this.withPresence) this.onPresence({ topic: name, join: await this.engine.presenceList(name) })
      }),
    }
    topic.ready.catch(() => {}) // awaited by every subscriber; a failure is theirs to report
    this.topics.set(name, topic)
    return topic
  }

  /** Forgets the topic (and unsubscribes at the engine) once nobody here reads it. */
  release(topic: TopicState<User>): void {
    if (
      topic.live.size > 0 ||
      topic.recovering.size > 0 ||
      topic.listeners.size > 0 ||
      this.topics.get(topic.name) !== topic
    )
      return
    this.topics.delete(topic.name)
    this.engine.unsubscribe(topic.name).catch(this.logError)
  }

  send(peer: Peer<User>, frame: PreparedFrame): void {
    if (peer.send(frame)) this.counters.delivered++
  }

  reply(peer: Peer<User>, text: string): void {
    this.send(peer, prepareFrame(text))
  }

  /** Writes a message to one peer: as a delta when the peer asked for them and has its base. */
  deliver(topic: TopicState<User>, peer: Peer<User>, delivery: PendingDelivery): void {
    const base = topic.deltaPeers.get(peer)
    const frame =
      base !== undefined && follows(base, delivery.message)
        ? deltaFrame(delivery, topic.topicJson)
        : delivery.frame
    this.sendMessages(topic, peer, frame, delivery.message, 1)
  }

  /**
   * Writes a frame of `count` messages ending with `last`: a delta peer's base moves to `last`, or
   * is lost with a write that failed.
   */
  private sendMessages(
    topic: TopicState<User>,
    peer: Peer<User>,
    frame: PreparedFrame,
    last: EngineMessage,
    count: number,
  ): void {
    const sent = peer.send(frame)
    if (sent) this.counters.delivered += count
    if (topic.deltaPeers.size > 0 && topic.deltaPeers.has(peer))
      topic.deltaPeers.set(peer, sent ? last : undefined)
  }

  /** A message from the engine: queued for this turn's write to the topic's peers. */
  readonly onMessage = (message: EngineMessage): void => {
    const topic = this.topics.get(message.topic)
    if (!topic) return
    const withDeltas = topic.deltaPeers.size > 0
    const delivery = deliveryOf(message, topic.topicJson, withDeltas ? topic.last : undefined)
    topic.last = withDeltas ? message : undefined
    if (topic.recovering.size > 0) for (const pending of topic.recovering.values()) pending.push(delivery)
    if (topic.listeners.size > 0) this.tellListeners(topic, message)
    if (topic.live.size === 0) return
    const queued = topic.batch !== undefined || topic.volatileBatch !== undefined
    // A volatile message came first this turn: it goes first, the batch starts again after it.
    if (topic.volatileBatch) this.flush(topic)
    if (topic.batch) topic.batch.push(delivery)
    else {
      if (this.observers.active) topic.queuedAt = performance.now()
      topic.batch = [delivery]
      if (!queued) this.queueFlush(topic)
    }
  }

  /** Writes the topic's messages of this turn just after it (once per turn however many came). */
  private queueFlush(topic: TopicState<User>): void {
    if (this.flushQueue.push(topic) === 1) setImmediate(this.flushAll)
  }

  /**
   * A volatile message from the engine: written with this turn's messages (in the order they came) to
   * the topic's live peers that are keeping up; peers still recovering, or behind, miss it. It moves
   * no delta base and no position.
   */
  readonly onVolatile = (message: VolatileMessage): void => {
    const topic = this.topics.get(message.topic)
    if (!topic) return
    for (const [listener, pending] of topic.listeners)
      if (pending === undefined && listener.onVolatile) this.guarded(() => listener.onVolatile!(message))
    if (topic.live.size === 0) return
    const entry = {
      frame: prepareFrame(volatileEnvelope(message, topic.topicJson), { volatile: true }),
      origin: message.origin,
    }
    if (topic.volatileBatch) topic.volatileBatch.push(entry)
    else {
      topic.volatileBatch = [entry]
      if (!topic.batch) {
        if (this.observers.active) topic.queuedAt = performance.now()
        this.queueFlush(topic)
      }
    }
  }

  /** Writes the turn's volatile messages: one write per peer, none to a peer over the limit. */
  private flushVolatile(topic: TopicState<User>): void {
    const batch = topic.volatileBatch
    if (batch === undefined) return
    topic.volatileBatch = undefined
    let all: PreparedFrame | undefined
    const wholeBatch = (): PreparedFrame => {
      all ??= prepareBatch(batch.map((entry) => entry.frame))
      return all
    }
    const origins = new Set<string>()
    for (const { origin } of batch) if (origin !== undefined) origins.add(origin)
    for (const peer of topic.live) {
      if (peer.bufferedAmount > this.volatileMaxBufferedBytes) {
        this.counters.dropped += batch.length
        continue
      }
      // A publisher's own message is left out of its batch (it asked for no echo).
      const own = origins.size > 0 && origins.has(peer.id)
      const frames = own ? batch.filter((entry) => entry.origin !== peer.id) : batch
      if (frames.length === 0) continue
      const frame = own ? prepareBatch(frames.map((entry) => entry.frame)) : wholeBatch()
      if (peer.send(frame)) this.counters.delivered += frames.length
      else this.counters.dropped += frames.length
    }
  }

  /**
   * Applies a presence change and tells the topic's peers who came or left, after the messages
   * that came before it. A joining connection is not told of its own join: it gets the member list.
   */
  readonly onPresence = (change: PresenceChange): void => {
    const topic = this.topics.get(change.topic)
    if (!topic) return
    const applied = topic.listeners.size > 0 ? connectionsChanged(topic, change) : undefined
    const { joined, joining, left } = applyPresenceChange(topic, change)
    this.announce(topic, 'join', joined, joining)
    this.announce(topic, 'leave', left, undefined)
    if (!applied) return
    for (const listener of topic.listeners.keys())
      if (listener.onPresence) this.guarded(() => listener.onPresence!(applied))
  }

  /** A stored message to the topic's listeners: held for those still recovering. */
  private tellListeners(topic: TopicState<User>, message: EngineMessage): void {
    for (const [listener, pending] of topic.listeners)
      if (pending) pending.push(message)
      else this.guarded(() => listener.onMessage(message))
  }

  /** Runs server code of a listener: what it throws is logged, never the delivery's problem. */
  guarded(run: () => void): void {
    try {
      run()
    } catch (err) {
      this.logError(err)
    }
  }

  private announce(
    topic: TopicState<User>,
    kind: 'join' | 'leave',
    infos: unknown[],
    except: ReadonlySet<string> | undefined,
  ): void {
    if (infos.length === 0) return
    this.flush(topic)
    const frame = prepareFrame(presenceEnvelope(topic.topicJson, kind, infos))
    for (const peer of topic.live) if (!except?.has(peer.id)) this.send(peer, frame)
  }

  private readonly flushAll = (): void => {
    const queue = this.flushQueue
    this.flushQueue = []
    for (const topic of queue) this.flush(topic)
  }

  /** Writes the topic's messages of this turn to its live peers: the stored ones, then the volatile. */
  flush(topic: TopicState<User>): void {
    // queuedAt is 0 unobserved, and when the observer came while these messages waited.
    const observed = this.observers.active && topic.queuedAt > 0
    const messages = observed ? (topic.batch?.length ?? 0) + (topic.volatileBatch?.length ?? 0) : 0
    this.flushStored(topic)
    this.flushVolatile(topic)
    if (messages > 0)
      this.observers.write({
        topic: topic.name,
        messages,
        peers: topic.live.size,
        delayMs: performance.now() - topic.queuedAt,
      })
    topic.queuedAt = 0
  }

  /**
   * Writes the turn's stored messages: one frame when there is one message, else one batch (one
   * write per peer instead of one per message). A peer that published some of them gets the others
   * one by one.
   */
  private flushStored(topic: TopicState<User>): void {
    const batch = topic.batch
    if (batch === undefined) return
    topic.batch = undefined
    // Peers that just recovered may have some of these from their history read already (an
    // engine that delivers through a server can be behind its own store): they get the rest.
    let handled: Set<Peer<User>> | undefined
    if (topic.covered.size > 0) {
      handled = new Set(topic.covered.keys())
      for (const [peer, mark] of topic.covered) {
        let passed = false
        for (const delivery of batch) {
          if (covers(mark, delivery.message)) continue
          passed = true
          if (delivery.message.origin !== peer.id) this.deliver(topic, peer, delivery)
        }
        if (passed) topic.covered.delete(peer)
      }
    }
    if (batch.length === 1) {
      const delivery = batch[0]!
      const { origin } = delivery.message
      for (const peer of topic.live)
        if (peer.id !== origin && !handled?.has(peer)) this.deliver(topic, peer, delivery)
      return
    }
    const origins = new Set<string>()
    for (const { message } of batch) if (message.origin !== undefined) origins.add(message.origin)
    const all = prepareBatch(batch.map((pending) => pending.frame))
    // Delta peers that have the message before the batch get the batch's deltas, one write too.
    const first = batch[0]!
    const last = batch[batch.length - 1]!
    let deltas: PreparedFrame | undefined
    const deltaBatch = (): PreparedFrame => {
      deltas ??= prepareBatch(batch.map((pending) => deltaFrame(pending, topic.topicJson)))
      return deltas
    }
    for (const peer of topic.live) {
      if (handled?.has(peer)) continue
      if (origins.size > 0 && origins.has(peer.id)) {
        for (const delivery of batch)
          if (delivery.message.origin !== peer.id) this.deliver(topic, peer, delivery)
        continue
      }
      const base = topic.deltaPeers.get(peer)
      const frame = base !== undefined && follows(base, first.message) ? deltaBatch() : all
      this.sendMessages(topic, peer, frame, last.message, batch.length)
    }
  }
}
