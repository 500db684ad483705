// Joining and leaving topics: the subscription cap, authorization, the handoff from history
// (recovery) to live delivery without a gap or a duplicate, and presence.
import type { StreamPosition } from '@flumen/core'
import { covers, FlumenError } from '@flumen/core'
import type { Access } from './access.js'
import type { Engine, EngineMessage, HistoryResult } from './engine.js'
import type { PeerState } from './peer-state.js'
import { membersByUser, presenceEnvelope } from './presence.js'
import type { PendingDelivery, TopicState, Topics } from './topics.js'
import { deliveryOf } from './topics.js'

export interface SubscribeResult {
  readonly recovered: boolean
  readonly position: StreamPosition
  /** Whether the topic's messages come as deltas (asked for, and the hub allows them). */
  readonly delta: boolean
}

export interface SubscribeOptions {
  /** The caller asked the authorizer already. */
  readonly authorized?: boolean
  /** The subscriber asked for deltas. */
  readonly delta?: boolean
}

export class Subscriptions<User> {
  constructor(
    private readonly engine: Engine,
    private readonly topics: Topics<User>,
    private readonly access: Access<User>,
    private readonly maxSubscriptions: number,
    private readonly withPresence: boolean,
    private readonly allowDeltas: boolean,
    private readonly logError: (err: unknown) => void,
  ) {}

  /**
   * Subscribes the peer to `rawTopic`: delivers what it missed since `since` (or tells it the gap
   * is lost), then live messages; `ack` is called before the history is sent.
   */
  async subscribe(
    state: PeerState<User>,
    rawTopic: unknown,
    since: StreamPosition | undefined,
    ack: (result: SubscribeResult) => void,
    { authorized = false, delta: askedForDelta = false }: SubscribeOptions = {},
  ): Promise<SubscribeResult> {
    const name = this.access.checkTopic(rawTopic)
    const { peer } = state
    if (state.topics.has(name)) throw new FlumenError('BAD_REQUEST', `Already subscribed to ${name}`)
    if (state.topics.size >= this.maxSubscriptions)
      throw new FlumenError(
        'BAD_REQUEST',
        `More than ${this.maxSubscriptions} subscriptions on one connection`,
      )
    // Reserved before anything is awaited: subscribes sent together count against the cap (and
    // against each other) as they arrive, not as their authorization completes.
    state.topics.add(name)
    try {
      if (!authorized) await this.access.requireAllowed(state, 'subscribe', name)
      if (this.withPresence) await this.access.checkPresence(name, state.identity.info)
      if (state.closed) throw new FlumenError('BAD_REQUEST', 'Connection closed')
    } catch (err) {
      state.topics.delete(name)
      throw err
    }
    const topic = this.topics.acquire(name)
    const pending: PendingDelivery[] = []
    topic.recovering.set(peer, pending)
    const delta = askedForDelta && this.allowDeltas
    // Set before the history read, so that live messages meanwhile keep their delta base.
    if (delta) topic.deltaPeers.set(peer, undefined)
    let history: HistoryResult
    try {
      await topic.ready
      history = await this.engine.history(name, since)
    } catch (err) {
      this.forget(topic, state)
      state.topics.delete(name)
      this.topics.release(topic)
      throw err
    }
    if (state.closed || topic.recovering.get(peer) !== pending) {
      return { recovered: false, position: history.position, delta }
    }
    const result = { recovered: since === undefined || history.recovered, position: history.position, delta }
    ack(result)
    // The missed messages, each a delta against the one before when the peer asked for deltas.
    let previous: EngineMessage | undefined
    for (const message of history.messages) {
      if (message.origin !== peer.id)
        this.topics.deliver(topic, peer, deliveryOf(message, topic.topicJson, previous))
      previous = message
    }
    // Live messages that arrived meanwhile: only those after what history covered.
    for (const delivery of pending)
      if (!covers(history.position, delivery.message) && delivery.message.origin !== peer.id)
        this.topics.deliver(topic, peer, delivery)
    topic.recovering.delete(peer)
    // Pending messages are in this peer's `pending` already (or older than its history read).
    this.topics.flush(topic)
    topic.live.add(peer)
    topic.covered.set(peer, history.position)
    if (this.withPresence) {
      const member = { connectionId: peer.id, userId: state.identity.id, info: state.identity.info }
      await this.engine.presenceAdd(name, member)
      // Engines that deliver through a server (Redis) report the join later: the snapshot counts it
      // now. The others hear of the join; the subscriber itself gets the member list, after its ack.
      this.topics.onPresence({ topic: name, join: [member] })
      const members = membersByUser(topic.connections.values())
      this.topics.reply(peer, presenceEnvelope(topic.topicJson, 'members', members))
    }
    return result
  }

  /** Drops what the topic keeps of the peer's delivery. */
  private forget(topic: TopicState<User>, state: PeerState<User>): void {
    topic.live.delete(state.peer)
    topic.recovering.delete(state.peer)
    topic.covered.delete(state.peer)
    topic.deltaPeers.delete(state.peer)
    if (topic.deltaPeers.size === 0) topic.last = undefined
  }

  async leave(state: PeerState<User>, name: string): Promise<void> {
    const topic = this.topics.get(name)
    state.topics.delete(name)
    if (!topic) return
    this.forget(topic, state)
    if (this.withPresence) {
      const member = topic.connections.get(state.peer.id)
      await this.engine.presenceRemove(name, state.peer.id).catch(this.logError)
      // Applied here at once; the engine's own report (later, from another node's view) is a no-op.
      if (member) this.topics.onPresence({ topic: name, leave: [member] })
    }
    this.topics.release(topic)
  }
}
