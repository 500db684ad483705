// The hub: topics, presence, history and recovery, RPC, over every transport. This file is its
// public shape and the wiring of its parts (see each module's header for what it does).
import type { AnyContract, StandardSchemaV1 } from '@flumen/contract'
import type { Authorizer, FlumenPlugin, Peer, StreamPosition } from '@flumen/core'
import { FlumenError, integerAtLeast, positiveInteger } from '@flumen/core'
import type { SseOptions, SseRoute } from '@flumen/sse'
import type { WebSocketOptions, WebSocketRoute } from '@flumen/ws'
import type { Env } from 'hono'
import { Access } from './access.js'
import type {
  HubMessage,
  HubMethodData,
  HubMethodName,
  HubMethodResult,
  HubTopic,
  PublishRequest,
} from './contract-types.js'
import type { Engine, HistoryOptions } from './engine.js'
import type { HubSnapshot } from './inspection.js'
import { disconnect, snapshotOf } from './inspection.js'
import type { Listening, TopicListener } from './listen.js'
import { listen } from './listen.js'
import { memoryEngine } from './memory-engine.js'
import type { CallContext, MethodHandler, MethodOptions } from './methods.js'
import { Methods } from './methods.js'
import type { HubObserver } from './observers.js'
import { Observers } from './observers.js'
import type { Identity } from './peer-state.js'
import { Peers } from './peers.js'
import { membersByUser } from './presence.js'
import { Publisher } from './publisher.js'
import { sseRoute, websocketRoute } from './routes.js'
import type { SessionContext } from './session.js'
import { ProtocolSession } from './session.js'
import { Subscriptions } from './subscriptions.js'
import { Topics } from './topics.js'

export type { AuthorizeRequest, Authorizer, HubAction } from '@flumen/core'
export type { HubMessage, HubTopic, PublishRequest } from './contract-types.js'
export type { CallContext, MethodOptions } from './methods.js'

/** How a user appears in presence: `id` counts a user once across tabs, `info` is what others see. */
export type PresenceIdentity<User = unknown> = (user: User, peer: Peer<User>) => { id: string; info: unknown }

/**
 * Options of a hub whose routes carry users of type `User` (what authentication puts in
 * `c.var.user`; `AuthUser` with `@flumen/auth`, `AuthUser | undefined` when auth is optional).
 */
export interface HubOptions<User = unknown, C extends AnyContract | undefined = undefined> {
  /**
   * The app's topics and methods (`defineContract` of `@flumen/contract`), shared with the client:
   * `hub.publish` and `hub.method` are typed from it, client publishes and calls are validated
   * before the app sees them (`BAD_REQUEST` with the schema's issues), and topics it does not name
   * are refused (`FORBIDDEN`) unless `allowUnknownTopics`.
   * @default none (topics and data unchecked)
   */
  contract?: C
  /**
   * With a contract: let clients use topics it does not name (their data unchecked).
   * @default false
   */
  allowUnknownTopics?: boolean
  /**
   * Where messages, history and presence live.
   * @default memoryEngine({ history })
   */
  engine?: Engine
  /** History bounds of the default memory engine (ignored when `engine` is given). */
  history?: HistoryOptions
  /**
   * Asked before every subscribe, publish and call of a client; false → `FORBIDDEN`.
   * @default every operation is allowed (use topicRules from @flumen/auth for deny-by-default)
   */
  authorize?: Authorizer<User>
  /**
   * Presence per topic (join/leave events and a member list on subscribe), or how users appear.
   * @default true, with `{ id: user.id, info: { id, name } }` (or the peer id without a user)
   */
  presence?: boolean | { identify: PresenceIdentity<User> }
  /**
   * Runs for every client publish, after authorization and topic schemas: what it returns is stored
   * and delivered instead of the client's data (`undefined` keeps it), so the server can stamp who
   * sent it (`from: user`) or when; throw a FlumenError to refuse the publish.
   * @default none (the client's data as validated)
   */
  beforePublish?: (request: PublishRequest<User, C>) => unknown | Promise<unknown>
  /**
   * Verifies the token of an `auth` message and returns the new user (throw or return
   * undefined to refuse). Without it, `auth` messages get BAD_REQUEST.
   */
  authenticate?: (token: string, peer: Peer<User>) => User | undefined | Promise<User | undefined>
  /**
   * Longest topic name in characters.
   * @default 256
   */
  maxTopicLength?: number
  /**
   * Topics one connection may subscribe to.
   * @default 100
   */
  maxSubscriptionsPerPeer?: number
  /**
   * Time a `call` handler has before the client gets TIMEOUT.
   * @default 10_000
   */
  callTimeoutMs?: number
  /**
   * Let subscribers ask for a topic's messages as deltas against the message before (`"delta":
   * "fossil"` on a WebSocket subscribe, `?delta=fossil` on SSE; `@flumen/client`'s `delta` option):
   * a topic whose messages are versions of one document then sends what changed, not the document.
   * A delta is made once per message (not per subscriber); data over 64 KiB always goes in full.
   * @default true
   */
  deltas?: boolean
  /**
   * Bytes queued for a peer past which it misses volatile messages (`publish(…, { volatile: true })`):
   * behind that much, a typing indicator or a progress tick would arrive stale. Counted in
   * `stats.dropped`.
   * @default 65_536
   */
  volatileMaxBufferedBytes?: number
  /**
   * How deep arrays and objects may nest in a client message; deeper is BAD_REQUEST, found before
   * the message is parsed.
   * @default 32
   */
  maxJsonDepth?: number
  /**
   * Errors that are not the client's fault (a failing engine or handler).
   * @default console.error
   */
  logError?: (err: unknown) => void
}

export interface HubStats {
  /** Connections attached now (WebSocket and SSE). */
  readonly peers: number
  /** Topics with local subscribers now. */
  readonly topics: number
  /** Messages published through this hub (clients and server). */
  readonly published: number
  /** Frames written to peers (messages, presence, replies). */
  readonly delivered: number
  /** Volatile messages a peer missed because it was behind (see `volatileMaxBufferedBytes`). */
  readonly dropped: number
  /** Subscriptions of this node's connections now (live and recovering). */
  readonly subscriptions: number
  /** Connections present in the topics this node's connections read, on every node (counted at each read). */
  readonly presenceMembers: number
}

export interface PresenceStats {
  readonly connections: number
  readonly users: number
}

export interface PublishOptions {
  /** A peer (or peer id) that must not receive this message, typically its sender. */
  except?: Peer | string
  /**
   * Idempotency key: the same key on the same topic within the engine's dedupe window (2 minutes
   * by default) is the same publish, stored once; it resolves with the first one's offset. Use it
   * to make a retried request (an HTTP POST sent again) publish once.
   */
  key?: string
  volatile?: false
}

export interface VolatilePublishOptions {
  /**
   * Deliver to the topic's subscribers that are connected and keeping up now, without storing it:
   * no offset, no history, no recovery (within one turn it keeps its order with stored ones, not
   * across turns). For what is stale a moment
   * later: typing indicators, progress, cursors. Works across nodes like any publish.
   */
  volatile: true
  /** A peer (or peer id) that must not receive this message, typically its sender. */
  except?: Peer | string
}

/**
 * The broadcast hub. A Flumen plugin: its routes register it with the server that serves them, so
 * its engine closes with the server; pass it in `serve({ plugins: [hub] })` when it has no route.
 */
export interface Hub<User = unknown, C extends AnyContract | undefined = undefined> extends FlumenPlugin {
  readonly engine: Engine
  readonly stats: Readonly<HubStats>
  /** The contract the hub checks, if it has one. */
  readonly contract: AnyContract | undefined
  /**
   * Publishes from server code; resolves with the message's offset once stored. With a contract,
   * the data is checked against the topic's message schema first (`BAD_REQUEST` with its issues).
   */
  publish<T extends HubTopic<C>>(topic: T, data: HubMessage<C, T>, options?: PublishOptions): Promise<number>
  /** A volatile publish: resolves once handed to the engine, with no offset (nothing is stored). */
  publish<T extends HubTopic<C>>(
    topic: T,
    data: HubMessage<C, T>,
    options: VolatilePublishOptions,
  ): Promise<undefined>
  /**
   * Registers an RPC method that clients reach with `{"type":"call"}`. With a contract, only its
   * methods, typed and checked both ways (input: `BAD_REQUEST`; a result it refuses: `INTERNAL`).
   */
  method<N extends HubMethodName<C>, Schema extends StandardSchemaV1 | undefined = undefined>(
    name: N,
    handler: (data: HubMethodData<C, N, Schema>, context: CallContext<User>) => HubMethodResult<C, N>,
    options?: MethodOptions<Schema>,
  ): void
  /** The protocol-v1 WebSocket route (subprotocol `flumen.v1`) on @flumen/ws. */
  websocket(options?: WebSocketOptions): WebSocketRoute<Env, User>
  /**
   * The SSE route on @flumen/sse: `GET ?topic=a&topic=b` streams those topics (each authorized
   * first: a refused topic is a 403, not a stream); `Last-Event-ID` resumes exactly, or sends
   * `event: reset` for a topic whose gap left the history.
   */
  sse(options?: SseOptions): SseRoute<Env, User>
  /** Attaches a peer of any transport; the transport calls `detach` when it closes. */
  attach(peer: Peer<User>, user: User): void
  detach(peer: Peer<User>): void
  /**
   * Subscribes an attached peer (authorization included) and delivers what it missed since
   * `since`, then live messages. Used by transports without a client protocol (SSE).
   */
  subscribe(
    peer: Peer<User>,
    topic: string,
    since?: StreamPosition,
  ): Promise<{ recovered: boolean; position: StreamPosition }>
  unsubscribe(peer: Peer<User>, topic: string): Promise<void>
  /**
   * Reads a topic from server code, without a connection and outside presence: `onMessage` gets the
   * messages after `since` (none without it), then every live one from any node, in offset order, with
   * no gap or duplicate between the two; `onVolatile` the volatile ones; `onPresence` every join and
   * leave (per connection). For plugins that keep state from a topic (`@flumen/yjs`). What a handler
   * throws is logged. Resolves once the history is read; `close()` stops.
   */
  listen(topic: string, listener: TopicListener, options?: { since?: StreamPosition }): Promise<Listening>
  /**
   * Hands the topics and method names that start with `prefix` to a plugin: `authorize` decides every
   * subscribe, publish and call of theirs instead of the hub's authorizer, and a contract need not name
   * them (`@flumen/yjs` owns `doc:` and `yjs.`). Prefixes may not overlap. Returns the function that
   * gives them back.
   */
  own(prefix: string, authorize: Authorizer<User>): () => void
  /** Users present in a topic (one entry per user). */
  presence(topic: string): Promise<unknown[]>
  /**
   * How many are in a topic, on every node: its connections, and its users (a user with two tabs
   * counts once). For occupancy (a room directory) without sending member lists around.
   */
  presenceStats(topic: string): Promise<PresenceStats>
  /**
   * Tells `observer` of every publish, method call and write to peers from now on (for metrics and
   * traces: `@flumen/metrics`); returns the function that stops it. Nothing is timed while the hub
   * has no observer.
   */
  observe(observer: HubObserver): () => void
  /**
   * This node's connections (user, transport, topics, bytes queued, since when) and the topics they
   * read, now: for admin tools (`@flumen/inspector`). Built on each call, from what the hub keeps anyway.
   */
  inspect(): HubSnapshot<User>
  /**
   * Closes this node's connection of that id (a WebSocket with 1008 "Disconnected by the server", an
   * SSE stream ends); false when this node has none. Clients reconnect as after any close.
   */
  disconnect(connectionId: string): boolean
}

const defaultIdentity: PresenceIdentity<unknown> = (user, peer): Identity => {
  if (typeof user === 'object' && user !== null && 'id' in user) {
    const { id, name } = user as { id: unknown; name?: unknown }
    return { id: String(id), info: name === undefined ? { id } : { id, name } }
  }
  return { id: peer.id, info: { id: peer.id } }
}

/**
 * The hub: topics, presence, history and recovery, RPC, over every transport.
 */
export const createHub = <User = unknown, C extends AnyContract | undefined = undefined>(
  options: HubOptions<User, C> = {},
): Hub<User, C> => {
  const engine = options.engine ?? memoryEngine(options.history ? { history: options.history } : {})
  if (options.authorize !== undefined && typeof options.authorize !== 'function')
    throw new Error('createHub: authorize must be a function')
  if (options.beforePublish !== undefined && typeof options.beforePublish !== 'function')
    throw new Error('createHub: beforePublish must be a function')
  const identify: PresenceIdentity<User> | undefined =
    options.presence === false
      ? undefined
      : options.presence === true || !options.presence
        ? defaultIdentity
        : options.presence.identify
  if (identify !== undefined && typeof identify !== 'function')
    throw new Error('createHub: presence.identify must be a function')
  const maxTopicLength = positiveInteger('createHub', 'maxTopicLength', options.maxTopicLength ?? 256)
  const maxSubscriptions = positiveInteger(
    'createHub',
    'maxSubscriptionsPerPeer',
    options.maxSubscriptionsPerPeer ?? 100,
  )
  const callTimeoutMs = positiveInteger('createHub', 'callTimeoutMs', options.callTimeoutMs ?? 10_000)
  const maxJsonDepth = positiveInteger('createHub', 'maxJsonDepth', options.maxJsonDepth ?? 32)
  const logError = options.logError ?? ((err: unknown) => console.error('[flumen/broadcast]', err))
  const authenticate = options.authenticate

  const volatileMaxBufferedBytes = integerAtLeast(
    'createHub',
    'volatileMaxBufferedBytes',
    options.volatileMaxBufferedBytes ?? 65_536,
    0,
  )

  const counters = { published: 0, delivered: 0, dropped: 0 }
  const observers = new Observers(logError)
  const publisher = new Publisher(engine, counters, observers)
  const topics = new Topics<User>(
    engine,
    counters,
    identify !== undefined,
    logError,
    volatileMaxBufferedBytes,
    observers,
  )
  const contract = options.contract
  if (contract !== undefined && typeof contract?.match !== 'function')
    throw new Error('createHub: contract must come from defineContract()')
  const access = new Access<User>(
    options.authorize,
    maxTopicLength,
    logError,
    contract,
    options.allowUnknownTopics ?? false,
  )
  const methods = new Methods<User>(callTimeoutMs, contract, observers, (name) => !!access.ownerOf(name))
  const subscriptions = new Subscriptions<User>(
    engine,
    topics,
    access,
    maxSubscriptions,
    identify !== undefined,
    options.deltas ?? true,
    logError,
  )
  const peers = new Peers<User>(topics, subscriptions, identify)
  const session = new ProtocolSession<User>({
    publisher,
    topics,
    access,
    subscriptions,
    methods,
    authenticate: authenticate && (async (token, state) => authenticate(token, state.peer)),
    beforePublish: options.beforePublish as SessionContext<User>['beforePublish'],
    maxJsonDepth,
    logError,
  })
  // The hub object is the plugin its routes register: created below, read when a route first runs.
  let self: Hub<User, C> | undefined
  const routes = { peers, session, subscriptions, access, maxSubscriptions, hub: () => self! }
  engine.attach({
    onMessage: topics.onMessage,
    onVolatile: topics.onVolatile,
    onPresence: topics.onPresence,
  })

  const stats: HubStats = {
    get peers() {
      return peers.size
    },
    get topics() {
      return topics.size
    },
    get published() {
      return counters.published
    },
    get delivered() {
      return counters.delivered
    },
    get dropped() {
      return counters.dropped
    },
    get subscriptions() {
      return topics.totals().subscriptions
    },
    get presenceMembers() {
      return topics.totals().presenceMembers
    },
  }

  const publish = async (
    topic: string,
    data: unknown,
    publishOptions: PublishOptions | VolatilePublishOptions = {},
  ): Promise<number | undefined> => {
    const name = access.checkTopic(topic)
    const checking = access.checkMessage(name, data)
    if (checking) await checking
    const json = JSON.stringify(data)
    if (json === undefined) throw new FlumenError('BAD_REQUEST', 'data must be JSON-serializable')
    const except = publishOptions.except
    const origin = typeof except === 'string' ? except : except?.id
    const originOption = origin === undefined ? {} : { origin }
    if (publishOptions.volatile === true) {
      await publisher.volatile(name, json, originOption, 'server')
      return undefined
    }
    return publisher.stored(
      name,
      json,
      {
        ...originOption,
        // Server keys have a namespace of their own: a client's key never matches one.
        ...(publishOptions.key !== undefined && { key: `s:${publishOptions.key}` }),
      },
      'server',
    )
  }

  self = {
    name: 'flumen-broadcast',
    engine,
    stats,
    contract,
    // One implementation of both overloads: a volatile publish answers undefined, a stored one its offset.
    publish: publish as Hub<User, C>['publish'],
    method(name, handler, methodOptions = {}) {
      methods.register(name, handler as MethodHandler<User>, methodOptions)
    },
    websocket: (wsOptions = {}) => websocketRoute(routes, wsOptions),
    sse: (sseOptions = {}) => sseRoute(routes, sseOptions),
    attach(peer, user) {
      peers.attach(peer, user)
    },
    detach: (peer) => peers.detach(peer),
    async subscribe(peer, topic, since) {
      const state = peers.get(peer)
      if (!state) throw new Error('hub.subscribe: attach the peer first')
      return subscriptions.subscribe(state, topic, since, () => {})
    },
    async unsubscribe(peer, topic) {
      const state = peers.get(peer)
      if (state) await subscriptions.leave(state, topic)
    },
    listen: (topic, listener, listenOptions = {}) =>
      listen(engine, topics, access.checkTopic(topic), listener, listenOptions.since),
    own: (prefix, authorize) => access.own(prefix, authorize),
    presence: async (topic) => membersByUser(await engine.presenceList(access.checkTopic(topic))),
    async presenceStats(topic) {
      const members = await engine.presenceList(access.checkTopic(topic))
      return { connections: members.length, users: new Set(members.map((m) => m.userId)).size }
    },
    observe: (observer) => observers.add(observer),
    inspect: () => snapshotOf(peers, topics),
    disconnect: (connectionId) => disconnect(peers, connectionId),
    stop: () => engine.close(),
  }
  return self
}
