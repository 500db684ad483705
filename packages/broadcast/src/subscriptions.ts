// Joining and leaving topics: the subscription cap, authorization, the handoff from history
// (recovery) to live delivery without a gap or a duplicate, and presence.
import type { StreamPosition } from '@flumen/core'
import { covers, FlumenError } from '@flumen/core'
import type { Access } from './access.js'
import type { Engine, HistoryResult } from './engine.js'
import type { PeerState } from './peer-state.js'
import { membersByUser, presenceEnvelope } from './presence.js'
import type { PendingDelivery, Topics } from './topics.js'
import { messageFrame } from './topics.js'

export interface SubscribeResult {
  readonly recovered: boolean
  readonly position: StreamPosition
}

export class Subscriptions<User> {
  constructor(
    private readonly engine: Engine,
    private readonly topics: Topics<User>,
    private readonly access: Access<User>,
    private readonly maxSubscriptions: number,
    private readonly withPresence: boolean,
    private readonly logError: (err: unknown) => void,
  ) {}

  /**
   * Subscribes the peer to `rawTopic`: delivers what it missed since `since` (or tells it the gap
   * is lost), then live messages; `ack` is called before the history is sent. `authorized` skips
   * the authorizer for a caller that asked it already.
   */
  async subscribe(
    state: PeerState<User>,
    rawTopic: unknown,
    since: StreamPosition | undefined,
    ack: (recovered: boolean, position: StreamPosition) => void,
    authorized = false,
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
    let history: HistoryResult
    try {
      await topic.ready
      history = await this.engine.history(name, since)
    } catch (err) {
      topic.recovering.delete(peer)
      state.topics.delete(name)
      this.topics.release(topic)
      throw err
    }
    if (state.closed || topic.recovering.get(peer) !== pending) {
      return { recovered: false, position: history.position }
    }
    const recovered = since === undefined || history.recovered
    ack(recovered, history.position)
    for (const message of history.messages)
      if (message.origin !== peer.id) this.topics.send(peer, messageFrame(message, topic.topicJson))
    // Live messages that arrived meanwhile: only those after what history covered.
    for (const { message, frame } of pending)
      if (!covers(history.position, message) && message.origin !== peer.id) this.topics.send(peer, frame)
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
    return { recovered, position: history.position }
  }

  async leave(state: PeerState<User>, name: string): Promise<void> {
    const topic = this.topics.get(name)
    state.topics.delete(name)
    if (!topic) return
    topic.live.delete(state.peer)
    topic.recovering.delete(state.peer)
    topic.covered.delete(state.peer)
    if (this.withPresence) {
      const member = topic.connections.get(state.peer.id)
      await this.engine.presenceRemove(name, state.peer.id).catch(this.logError)
      // Applied here at once; the engine's own report (later, from another node's view) is a no-op.
      if (member) this.topics.onPresence({ topic: name, leave: [member] })
    }
    this.topics.release(topic)
  }
}
