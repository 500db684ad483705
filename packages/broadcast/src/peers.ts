// The connections attached to the hub, of every transport, and what the hub keeps of each.
import type { Peer } from '@flumen/core'
import type { Identity, PeerState } from './peer-state.js'
import type { Subscriptions } from './subscriptions.js'
import type { Topics } from './topics.js'

export type IdentifyPeer<User> = (user: User, peer: Peer<User>) => Identity

export class Peers<User> {
  private readonly states = new Map<Peer<User>, PeerState<User>>()

  constructor(
    readonly topics: Topics<User>,
    private readonly subscriptions: Subscriptions<User>,
    private readonly identify: IdentifyPeer<User> | undefined,
  ) {}

  get size(): number {
    return this.states.size
  }

  get(peer: Peer<User>): PeerState<User> | undefined {
    return this.states.get(peer)
  }

  /** Every attached connection's state. */
  all(): IterableIterator<PeerState<User>> {
    return this.states.values()
  }

  /** Attaches the peer (once) and returns its state. */
  attach(peer: Peer<User>, user: User): PeerState<User> {
    const existing = this.states.get(peer)
    if (existing) return existing
    const state: PeerState<User> = {
      peer,
      user,
      identity: this.identify ? this.identify(user, peer) : { id: peer.id, info: null },
      topics: new Set(),
      closed: false,
      attachedAt: Date.now(),
    }
    this.states.set(peer, state)
    return state
  }

  /** Detaches the peer: it leaves every topic. */
  detach(peer: Peer<User>): void {
    const state = this.states.get(peer)
    if (!state) return
    state.closed = true
    this.states.delete(peer)
    for (const name of [...state.topics]) void this.subscriptions.leave(state, name)
  }
}
