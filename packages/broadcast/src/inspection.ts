// What this node holds, for admin tools (@flumen/inspector): its connections and the topics they
// read, read on demand (nothing is kept for it), and the one action on a connection: closing it.
import type { Peer } from '@flumen/core'
import type { Peers } from './peers.js'
import type { Topics } from './topics.js'

/** One connection of this node, as `hub.inspect()` lists it. */
export interface ConnectionInfo<User = unknown> {
  readonly id: string
  readonly transport: Peer['transport']
  readonly user: User
  /** Topics subscribed (or being subscribed). */
  readonly topics: readonly string[]
  /** Bytes queued to it, not yet written to the socket. */
  readonly bufferedAmount: number
  /** When it was attached to the hub (ms since the epoch). */
  readonly connectedAt: number
}

/** One topic read by this node's connections. */
export interface TopicInfo {
  readonly name: string
  /** Live subscribers on this node. */
  readonly subscribers: number
  /** Subscribers still receiving what they missed. */
  readonly recovering: number
  /** Connections present in the topic, on every node. */
  readonly presence: number
}

export interface HubSnapshot<User = unknown> {
  readonly connections: readonly ConnectionInfo<User>[]
  readonly topics: readonly TopicInfo[]
}

/** Close code and reason of `hub.disconnect` on a WebSocket (an SSE stream just ends). */
export const disconnectClose = { code: 1008, reason: 'Disconnected by the server' } as const

/** Each list is built when first read: a look at the topics costs nothing per connection. */
export const snapshotOf = <User>(peers: Peers<User>, topics: Topics<User>): HubSnapshot<User> => {
  let connections: ConnectionInfo<User>[] | undefined
  let topicList: TopicInfo[] | undefined
  return {
    get connections() {
      connections ??= connectionsOf(peers)
      return connections
    },
    get topics() {
      topicList ??= topicsOf(topics)
      return topicList
    },
  }
}

const connectionsOf = <User>(peers: Peers<User>): ConnectionInfo<User>[] =>
  [...peers.all()].map((state) => ({
    id: state.peer.id,
    transport: state.peer.transport,
    user: state.user,
    topics: [...state.topics],
    bufferedAmount: state.peer.bufferedAmount,
    connectedAt: state.attachedAt,
  }))

const topicsOf = <User>(topics: Topics<User>): TopicInfo[] =>
  [...topics.all()].map((topic) => ({
    name: topic.name,
    subscribers: topic.live.size,
    recovering: topic.recovering.size,
    presence: topic.connections.size,
  }))

/** Closes this node's connection `id`; false when it has none of that id. */
export const disconnect = <User>(peers: Peers<User>, id: string): boolean => {
  for (const state of peers.all()) {
    if (state.peer.id !== id) continue
    state.peer.close(disconnectClose.code, disconnectClose.reason)
    return true
  }
  return false
}
