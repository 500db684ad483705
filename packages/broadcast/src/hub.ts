import type { FlumenPlugin, Peer, PreparedFrame } from '@flumen/core'
import { FlumenError, prepareBatch, prepareFrame, toFlumenError } from '@flumen/core'
import type { SseOptions, SseRoute } from '@flumen/sse'
import { decodeCursor, sse } from '@flumen/sse'
import type { WebSocketEvents, WebSocketOptions, WebSocketRoute } from '@flumen/ws'
import { upgradeWebSocket } from '@flumen/ws'
import type { Env } from 'hono'
import type {
  Engine,
  EngineMessage,
  HistoryOptions,
  PresenceChange,
  PresenceMember,
  StreamPosition,
} from './engine.js'
import { memoryEngine } from './memory-engine.js'
import type { InboundMessage } from './protocol.js'
import {
  ackEnvelope,
  errorEnvelope,
  messageEnvelope,
  nestsDeeperThan,
  parsePosition,
  pongEnvelope,
  protocolName,
  resultEnvelope,
  subscribeAck,
} from './protocol.js'
import type { StandardSchemaV1 } from './schema.js'
import { validate } from './schema.js'

export type HubAction = 'subscribe' | 'publish' | 'call'

/**
 * What the authorizer is asked for every operation of a client. `User` is what authentication puts
 * in `c.var.user` on the hub's routes (`createHub<User>()`).
 */
export interface AuthorizeRequest<User = unknown> {
  /** What auth put in `c.var.user` (or what an `auth` message replaced it with). */
  readonly user: User
  readonly action: HubAction
  /** The topic, or the method name for `call`. */
  readonly topic: string
  readonly peer: Peer<User>
}

export type Authorizer<User = unknown> = (request: AuthorizeRequest<User>) => boolean | Promise<boolean>

/** How a user appears in presence: `id` counts a user once across tabs, `info` is what others see. */
export type PresenceIdentity<User = unknown> = (user: User, peer: Peer<User>) => { id: string; info: unknown }

/**
 * Options of a hub whose routes carry users of type `User` (what authentication puts in
 * `c.var.user`; `AuthUser` with `@flumen/auth`, `AuthUser | undefined` when auth is optional).
 */
export interface HubOptions<User = unknown> {
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

/** Context of a method handler. */
export interface CallContext<User = unknown> {
  readonly user: User
  readonly peer: Peer<User>
}

export interface MethodOptions<Schema extends StandardSchemaV1 | undefined> {
  /** Validates (and may transform) `data` before the handler runs; failure → BAD_REQUEST. */
  schema?: Schema
  /** @default the hub's callTimeoutMs */
  timeoutMs?: number
}

export interface HubStats {
  /** Connections attached now (WebSocket and SSE). */
  readonly peers: number
  /** Topics with local subscribers now. */
  readonly topics: number
  /** Messages published through this hub (clients and server). */
  published: number
  /** Frames written to peers (messages, presence, replies). */
  delivered: number
}

export interface PublishOptions {
  /** A peer (or peer id) that must not receive this message, typically its sender. */
  except?: Peer | string
}

/** The broadcast hub; pass it to `serve({ plugins: [hub] })` so it closes with the server. */
export interface Hub<User = unknown> extends FlumenPlugin {
  readonly engine: Engine
  readonly stats: Readonly<HubStats>
  /** Publishes from server code; resolves with the message's offset once stored. */
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<number>
  /** Registers an RPC method that clients reach with `{"type":"call"}`. */
  method<Schema extends StandardSchemaV1 | undefined = undefined>(
    name: string,
    handler: (
      data: Schema extends StandardSchemaV1 ? StandardSchemaV1.InferOutput<Schema> : unknown,
      context: CallContext<User>,
    ) => unknown,
    options?: MethodOptions<Schema>,
  ): void
  /** Validates client publishes to topics matching `pattern` (`*` matches any run of characters). */
  topicSchema(pattern: string, schema: StandardSchemaV1): void
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
  /** Users present in a topic (one entry per user). */
  presence(topic: string): Promise<unknown[]>
}

interface PeerState<User> {
  readonly peer: Peer<User>
  user: User
  readonly identity: { id: string; info: unknown }
  closed: boolean
}

interface PendingDelivery {
  readonly message: EngineMessage
  readonly frame: PreparedFrame
}

interface TopicState<User> {
  readonly topicJson: string
  readonly live: Set<Peer<User>>
  /** Peers between subscribe and the end of their recovery: live messages wait here. */
  readonly recovering: Map<Peer<User>, PendingDelivery[]>
  /** Live peers and the position their history read covered, until a newer message arrives. */
  readonly covered: Map<Peer<User>, StreamPosition>
  /** Messages of this turn not yet written to the live peers (see `flushTopic`). */
  batch: PendingDelivery[] | undefined
  /** Resolves once the engine delivers the topic to this node. */
  readonly ready: Promise<void>
  /** Connections present, and how many connections each user has. */
  readonly connections: Map<string, PresenceMember>
  readonly users: Map<string, number>
}

interface Method<User> {
  readonly handler: (data: unknown, context: CallContext<User>) => unknown
  readonly schema: StandardSchemaV1 | undefined
  readonly timeoutMs: number
}

const messageFrame = (message: EngineMessage, topicJson: string): PreparedFrame =>
  prepareFrame(messageEnvelope(message, topicJson), {
    position: { topic: message.topic, epoch: message.epoch, offset: message.offset },
  })

const defaultIdentity: PresenceIdentity<unknown> = (user, peer) => {
  if (typeof user === 'object' && user !== null && 'id' in user) {
    const { id, name } = user as { id: unknown; name?: unknown }
    return { id: String(id), info: name === undefined ? { id } : { id, name } }
  }
  return { id: peer.id, info: { id: peer.id } }
}

// Control characters and oversized names are refused; everything else is the app's to decide.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const invalidTopicCharacters = /[\u0000-\u001f\u007f]/

const positiveInteger = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 1) throw new Error(`createHub: ${name} must be a positive integer`)
  return value
}

const patternToRegExp = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  )

/**
 * The hub: topics, presence, history and recovery, RPC, over every transport.
 */
export const createHub = <User = unknown>(options: HubOptions<User> = {}): Hub<User> => {
  const engine = options.engine ?? memoryEngine(options.history ? { history: options.history } : {})
  const authorize = options.authorize
  if (authorize !== undefined && typeof authorize !== 'function')
    throw new Error('createHub: authorize must be a function')
  const identify: PresenceIdentity<User> | undefined =
    options.presence === false
      ? undefined
      : options.presence === true || !options.presence
        ? defaultIdentity
        : options.presence.identify
  if (identify !== undefined && typeof identify !== 'function')
    throw new Error('createHub: presence.identify must be a function')
  const maxTopicLength = positiveInteger('maxTopicLength', options.maxTopicLength ?? 256)
  const maxSubscriptions = positiveInteger('maxSubscriptionsPerPeer', options.maxSubscriptionsPerPeer ?? 100)
  const callTimeoutMs = positiveInteger('callTimeoutMs', options.callTimeoutMs ?? 10_000)
  const maxJsonDepth = positiveInteger('maxJsonDepth', options.maxJsonDepth ?? 32)
  const logError = options.logError ?? ((err: unknown) => console.error('[flumen/broadcast]', err))

  const states = new Map<Peer<User>, PeerState<User>>()
  const topics = new Map<string, TopicState<User>>()
  const methods = new Map<string, Method<User>>()
  const topicSchemas: { pattern: RegExp; schema: StandardSchemaV1 }[] = []
  const stats: HubStats = {
    get peers() {
      return states.size
    },
    get topics() {
      return topics.size
    },
    published: 0,
    delivered: 0,
  }

  const send = (peer: Peer<User>, frame: PreparedFrame): void => {
    if (peer.send(frame)) stats.delivered++
  }
  const reply = (peer: Peer<User>, text: string): void => send(peer, prepareFrame(text))

  const checkTopic = (topic: unknown): string => {
    if (typeof topic !== 'string' || topic.length === 0)
      throw new FlumenError('BAD_REQUEST', 'topic must be a non-empty string')
    if (topic.length > maxTopicLength)
      throw new FlumenError('BAD_REQUEST', `topic is longer than ${maxTopicLength} characters`)
    if (invalidTopicCharacters.test(topic))
      throw new FlumenError('BAD_REQUEST', 'topic contains control characters')
    return topic
  }

  const requireAllowed = async (state: PeerState<User>, action: HubAction, topic: string): Promise<void> => {
    if (!authorize) return
    let allowed: boolean
    try {
      allowed = await authorize({ user: state.user, action, topic, peer: state.peer })
    } catch (err) {
      logError(err)
      allowed = false
    }
    if (allowed !== true) throw new FlumenError('FORBIDDEN', `Not allowed to ${action} ${topic}`)
  }

  const broadcastPresence = (
    topic: TopicState<User>,
    change: 'join' | 'leave',
    infos: unknown[],
    except: ReadonlySet<string> | undefined,
  ): void => {
    if (infos.length === 0) return
    flushTopic(topic) // presence after the messages that came before it
    const frame = prepareFrame(
      `{"type":"presence","topic":${topic.topicJson},"${change}":${JSON.stringify(infos)}}`,
    )
    for (const peer of topic.live) if (!except?.has(peer.id)) send(peer, frame)
  }

  /**
   * Applies presence changes idempotently (by connection), and tells peers of users who came or
   * left. A joining connection is never told of its own join: it gets the member list instead.
   */
  const applyPresence = (change: PresenceChange): void => {
    const topic = topics.get(change.topic)
    if (!topic) return
    const joined: unknown[] = []
    const left: unknown[] = []
    let joining: Set<string> | undefined
    for (const member of change.join ?? []) {
      if (topic.connections.has(member.connectionId)) continue
      topic.connections.set(member.connectionId, member)
      const count = topic.users.get(member.userId) ?? 0
      topic.users.set(member.userId, count + 1)
      if (count === 0) {
        joined.push(member.info)
        joining ??= new Set()
        joining.add(member.connectionId)
      }
    }
    for (const member of change.leave ?? []) {
      if (!topic.connections.delete(member.connectionId)) continue
      const count = (topic.users.get(member.userId) ?? 1) - 1
      if (count > 0) topic.users.set(member.userId, count)
      else {
        topic.users.delete(member.userId)
        left.push(member.info)
      }
    }
    broadcastPresence(topic, 'join', joined, joining)
    broadcastPresence(topic, 'leave', left, undefined)
  }

  /**
   * Writes the topic's pending messages to its live peers: one frame when there is one message,
   * else one batch (one write per peer instead of one per message). A peer that published some of
   * them gets the others one by one.
   */
  const flushTopic = (topic: TopicState<User>): void => {
    const batch = topic.batch
    if (batch === undefined) return
    topic.batch = undefined
    // Peers that just recovered may have some of these from their history read already (an
    // engine that delivers through a server can be behind its own store): they get the rest.
    const covered = topic.covered
    let handled: Set<Peer<User>> | undefined
    if (covered.size > 0) {
      handled = new Set(covered.keys())
      for (const [peer, mark] of covered) {
        let passed = false
        for (const { message, frame } of batch) {
          if (message.epoch === mark.epoch && message.offset <= mark.offset) continue
          passed = true
          if (message.origin !== peer.id) send(peer, frame)
        }
        if (passed) covered.delete(peer)
      }
    }
    if (batch.length === 1) {
      const { message, frame } = batch[0]!
      for (const peer of topic.live) {
        if (peer.id !== message.origin && !handled?.has(peer) && peer.send(frame)) stats.delivered++
      }
      return
    }
    const origins = new Set<string>()
    for (const { message } of batch) if (message.origin !== undefined) origins.add(message.origin)
    const all = prepareBatch(batch.map((pending) => pending.frame))
    for (const peer of topic.live) {
      if (handled?.has(peer)) continue
      if (origins.size > 0 && origins.has(peer.id)) {
        for (const { message, frame } of batch) if (message.origin !== peer.id) send(peer, frame)
      } else if (peer.send(all)) stats.delivered += batch.length
    }
  }

  // Messages that arrive in the same event-loop turn are written together just after it: under
  // load a peer gets several per syscall; an idle hub adds no timer, only the end of the turn.
  let flushQueue: TopicState<User>[] = []
  const flushAll = (): void => {
    const queue = flushQueue
    flushQueue = []
    for (const topic of queue) flushTopic(topic)
  }

  const onMessage = (message: EngineMessage): void => {
    const topic = topics.get(message.topic)
    if (!topic) return
    const delivery = { message, frame: messageFrame(message, topic.topicJson) }
    if (topic.recovering.size > 0) for (const pending of topic.recovering.values()) pending.push(delivery)
    if (topic.live.size === 0) return
    if (topic.batch) topic.batch.push(delivery)
    else {
      topic.batch = [delivery]
      if (flushQueue.push(topic) === 1) setImmediate(flushAll)
    }
  }

  engine.attach({ onMessage, onPresence: applyPresence })

  /** The topic's local state, created (and subscribed at the engine) on first use. */
  const topicState = (name: string): TopicState<User> => {
    let topic = topics.get(name)
    if (topic) return topic
    const created: TopicState<User> = {
      topicJson: JSON.stringify(name),
      live: new Set(),
      recovering: new Map(),
      batch: undefined,
      covered: new Map(),
      connections: new Map(),
      users: new Map(),
      ready: engine.subscribe(name).then(async () => {
        if (identify) applyPresence({ topic: name, join: await engine.presenceList(name) })
      }),
    }
    created.ready.catch(() => {}) // awaited by every subscriber; a failure is theirs to report
    topic = created
    topics.set(name, topic)
    return topic
  }

  const releaseTopic = (name: string, topic: TopicState<User>): void => {
    if (topic.live.size > 0 || topic.recovering.size > 0 || topics.get(name) !== topic) return
    topics.delete(name)
    engine.unsubscribe(name).catch(logError)
  }

  const leave = async (state: PeerState<User>, name: string): Promise<void> => {
    const topic = topics.get(name)
    state.peer.topics.delete(name)
    if (!topic) return
    topic.live.delete(state.peer)
    topic.recovering.delete(state.peer)
    topic.covered.delete(state.peer)
    if (identify) {
      const member = topic.connections.get(state.peer.id)
      await engine.presenceRemove(name, state.peer.id).catch(logError)
      // Applied here at once; the engine's own report (later, from another node's view) is a no-op.
      if (member) applyPresence({ topic: name, leave: [member] })
    }
    releaseTopic(name, topic)
  }

  const subscribePeer = async (
    state: PeerState<User>,
    rawTopic: unknown,
    since: StreamPosition | undefined,
    ack: (recovered: boolean, position: StreamPosition) => void,
    authorized = false,
  ): Promise<{ recovered: boolean; position: StreamPosition }> => {
    const name = checkTopic(rawTopic)
    const peer = state.peer
    if (peer.topics.has(name)) throw new FlumenError('BAD_REQUEST', `Already subscribed to ${name}`)
    if (peer.topics.size >= maxSubscriptions) {
      throw new FlumenError('BAD_REQUEST', `More than ${maxSubscriptions} subscriptions on one connection`)
    }
    // Reserved before anything is awaited: subscribes sent together count against the cap (and
    // against each other) as they arrive, not as their authorization completes.
    peer.topics.add(name)
    try {
      if (!authorized) await requireAllowed(state, 'subscribe', name)
      if (state.closed) throw new FlumenError('BAD_REQUEST', 'Connection closed')
    } catch (err) {
      peer.topics.delete(name)
      throw err
    }
    const topic = topicState(name)
    const pending: PendingDelivery[] = []
    topic.recovering.set(peer, pending)
    let history: Awaited<ReturnType<Engine['history']>>
    try {
      await topic.ready
      history = await engine.history(name, since)
    } catch (err) {
      topic.recovering.delete(peer)
      peer.topics.delete(name)
      releaseTopic(name, topic)
      throw err
    }
    if (state.closed || topic.recovering.get(peer) !== pending) {
      return { recovered: false, position: history.position }
    }
    const recovered = since === undefined || history.recovered
    ack(recovered, history.position)
    for (const message of history.messages) {
      if (message.origin !== peer.id) send(peer, messageFrame(message, topic.topicJson))
    }
    // Live messages that arrived meanwhile: only those after what history covered.
    const { epoch, offset } = history.position
    for (const { message, frame } of pending) {
      if ((message.epoch !== epoch || message.offset > offset) && message.origin !== peer.id)
        send(peer, frame)
    }
    topic.recovering.delete(peer)
    // Pending messages are in this peer's `pending` already (or older than its history read).
    flushTopic(topic)
    topic.live.add(peer)
    topic.covered.set(peer, history.position)
    if (identify) {
      const member = { connectionId: peer.id, userId: state.identity.id, info: state.identity.info }
      await engine.presenceAdd(name, member)
      // Engines that deliver through a server (Redis) report the join later: the snapshot counts it
      // now. The others hear of the join; the subscriber itself gets the member list, after its ack.
      applyPresence({ topic: name, join: [member] })
      const members: unknown[] = []
      const seen = new Set<string>()
      for (const member of topic.connections.values()) {
        if (!seen.has(member.userId)) {
          seen.add(member.userId)
          members.push(member.info)
        }
      }
      reply(peer, `{"type":"presence","topic":${topic.topicJson},"members":${JSON.stringify(members)}}`)
    }
    return { recovered, position: history.position }
  }

  const publishFrom = async (state: PeerState<User>, message: InboundMessage): Promise<number> => {
    const name = checkTopic(message.topic)
    if (!('data' in message) || message.data === undefined)
      throw new FlumenError('BAD_REQUEST', 'publish needs data')
    await requireAllowed(state, 'publish', name)
    let data: unknown = message.data
    for (const { pattern, schema } of topicSchemas) {
      if (!pattern.test(name)) continue
      const result = await validate(schema, data)
      if (!result.ok) throw new FlumenError('BAD_REQUEST', result.message)
      data = result.value
    }
    const stored = await engine.publish(
      name,
      JSON.stringify(data),
      message.echo === true ? {} : { origin: state.peer.id },
    )
    stats.published++
    return stored.offset
  }

  const callMethod = async (state: PeerState<User>, message: InboundMessage): Promise<string> => {
    if (
      typeof message.method !== 'string' ||
      message.method.length === 0 ||
      message.method.length > maxTopicLength
    ) {
      throw new FlumenError('BAD_REQUEST', 'call needs a method name')
    }
    await requireAllowed(state, 'call', message.method)
    const method = methods.get(message.method)
    if (!method) throw new FlumenError('NOT_FOUND', `Unknown method ${message.method}`)
    let data = message.data
    if (method.schema) {
      const result = await validate(method.schema, data)
      if (!result.ok) throw new FlumenError('BAD_REQUEST', result.message)
      data = result.value
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FlumenError('TIMEOUT', `${message.method} took longer than ${method.timeoutMs} ms`)),
        method.timeoutMs,
      )
    })
    try {
      const result = await Promise.race([
        Promise.resolve(method.handler(data, { user: state.user, peer: state.peer })),
        timeout,
      ])
      return JSON.stringify(result ?? null)
    } finally {
      clearTimeout(timer)
    }
  }

  const refreshAuth = async (state: PeerState<User>, message: InboundMessage): Promise<void> => {
    if (!options.authenticate) throw new FlumenError('BAD_REQUEST', 'auth is not enabled on this server')
    if (typeof message.token !== 'string' || message.token.length === 0)
      throw new FlumenError('BAD_REQUEST', 'auth needs a token')
    let user: User | undefined
    try {
      user = await options.authenticate(message.token, state.peer)
    } catch (err) {
      throw err instanceof FlumenError ? err : new FlumenError('UNAUTHORIZED')
    }
    if (user === undefined || user === null) throw new FlumenError('UNAUTHORIZED')
    state.user = user
  }

  /** Runs one protocol operation and answers with its ack/result or an error. */
  const run = (
    state: PeerState<User>,
    id: number | undefined,
    operation: () => Promise<string | undefined>,
  ): void => {
    operation().then(
      (text) => {
        if (text !== undefined && !state.closed) reply(state.peer, text)
      },
      (err: unknown) => {
        const error = toFlumenError(err)
        if (error.code === 'INTERNAL') logError(err)
        if (!state.closed) reply(state.peer, errorEnvelope(id, error.code, error.message))
      },
    )
  }

  const handleText = (state: PeerState<User>, text: string): void => {
    if (nestsDeeperThan(text, maxJsonDepth)) {
      reply(state.peer, errorEnvelope(undefined, 'BAD_REQUEST', `JSON nested deeper than ${maxJsonDepth}`))
      return
    }
    let message: InboundMessage
    try {
      message = JSON.parse(text) as InboundMessage
    } catch {
      reply(state.peer, errorEnvelope(undefined, 'BAD_REQUEST', 'Malformed JSON'))
      return
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      reply(state.peer, errorEnvelope(undefined, 'BAD_REQUEST', 'A message must be a JSON object'))
      return
    }
    const rawId = message.id
    if (rawId !== undefined && !(typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0)) {
      reply(state.peer, errorEnvelope(undefined, 'BAD_REQUEST', 'id must be a non-negative integer'))
      return
    }
    const id = rawId as number | undefined
    switch (message.type) {
      case 'publish':
        run(state, id, async () => {
          const offset = await publishFrom(state, message)
          return id === undefined ? undefined : ackEnvelope(id, { offset })
        })
        break
      case 'subscribe': {
        const since = parsePosition(message.since)
        if (since === null) {
          reply(state.peer, errorEnvelope(id, 'BAD_REQUEST', 'since must be { epoch, offset }'))
          break
        }
        run(state, id, async () => {
          await subscribePeer(state, message.topic, since, (recovered, position) => {
            reply(state.peer, subscribeAck(id, recovered, position))
          })
          return undefined
        })
        break
      }
      case 'unsubscribe':
        run(state, id, async () => {
          const name = checkTopic(message.topic)
          if (!state.peer.topics.has(name)) throw new FlumenError('BAD_REQUEST', `Not subscribed to ${name}`)
          await leave(state, name)
          return id === undefined ? undefined : ackEnvelope(id)
        })
        break
      case 'call':
        if (id === undefined) reply(state.peer, errorEnvelope(undefined, 'BAD_REQUEST', 'call needs an id'))
        else run(state, id, async () => resultEnvelope(id, await callMethod(state, message)))
        break
      case 'auth':
        run(state, id, async () => {
          await refreshAuth(state, message)
          return id === undefined ? undefined : ackEnvelope(id)
        })
        break
      case 'ping':
        reply(state.peer, pongEnvelope)
        break
      default:
        reply(state.peer, errorEnvelope(id, 'BAD_REQUEST', 'Unknown message type'))
    }
  }

  /** The `id` of a protocol message, when it has a valid one (for answers to messages not run). */
  const messageId = (text: string): number | undefined => {
    if (nestsDeeperThan(text, maxJsonDepth)) return undefined
    try {
      const id = (JSON.parse(text) as InboundMessage | null)?.id
      return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined
    } catch {
      return undefined
    }
  }

  const hub: Hub<User> = {
    name: 'flumen-broadcast',
    engine,
    stats,
    async publish(topic, data, publishOptions = {}) {
      const name = checkTopic(topic)
      const json = JSON.stringify(data)
      if (json === undefined) throw new FlumenError('BAD_REQUEST', 'data must be JSON-serializable')
      const except = publishOptions.except
      const origin = typeof except === 'string' ? except : except?.id
      const stored = await engine.publish(name, json, origin === undefined ? {} : { origin })
      stats.published++
      return stored.offset
    },
    method(name, handler, methodOptions = {}) {
      if (typeof name !== 'string' || name.length === 0)
        throw new Error('hub.method: name must be a non-empty string')
      if (typeof handler !== 'function') throw new Error('hub.method: handler must be a function')
      if (methods.has(name)) throw new Error(`hub.method: ${name} is already registered`)
      methods.set(name, {
        handler: handler as Method<User>['handler'],
        schema: methodOptions.schema,
        timeoutMs: positiveInteger('timeoutMs', methodOptions.timeoutMs ?? callTimeoutMs),
      })
    },
    topicSchema(pattern, schema) {
      if (typeof schema?.['~standard']?.validate !== 'function')
        throw new Error('hub.topicSchema: schema must be a Standard Schema')
      topicSchemas.push({ pattern: patternToRegExp(pattern), schema })
    },
    websocket(wsOptions = {}) {
      const events: WebSocketEvents<User> = {
        onOpen: (_event, ws) => hub.attach(ws.peer, ws.peer.user),
        onMessage: (event, ws) => {
          const state = states.get(ws.peer)
          if (!state) return
          if (typeof event.data === 'string') handleText(state, event.data)
          else reply(ws.peer, errorEnvelope(undefined, 'BAD_REQUEST', 'Binary messages are not accepted'))
        },
        onClose: (_event, ws) => hub.detach(ws.peer),
        // Each dropped message gets its own error, with its id: a client waiting on it never hangs.
        onRateLimited: (data, ws) => {
          const id = typeof data === 'string' ? messageId(data) : undefined
          reply(ws.peer, errorEnvelope(id, 'RATE_LIMITED', 'Too many messages'))
        },
      }
      return upgradeWebSocket<Env, User>(() => events, {
        ...wsOptions,
        protocols: wsOptions.protocols ?? [protocolName],
      })
    },
    sse(sseOptions = {}) {
      return sse<Env, User>(async (stream, c) => {
        const topics = [...new Set(c.req.queries('topic') ?? [])]
        if (topics.length === 0) throw new FlumenError('BAD_REQUEST', 'Give at least one ?topic=')
        if (topics.length > maxSubscriptions) {
          throw new FlumenError('BAD_REQUEST', `More than ${maxSubscriptions} topics on one stream`)
        }
        for (const topic of topics) checkTopic(topic)
        const since = decodeCursor(stream.lastEventId)
        hub.attach(stream, stream.user)
        stream.onClose(() => hub.detach(stream))
        const state = states.get(stream)!
        // Every topic is authorized before any is subscribed: a stream refused one of its topics
        // (a 403) never joined the others, so nobody saw it come and go.
        for (const topic of topics) await requireAllowed(state, 'subscribe', topic)
        for (const topic of topics) {
          const from = since.get(topic)
          const result = await subscribePeer(state, topic, from, () => {}, true)
          if (!stream.positions.has(topic)) stream.positions.set(topic, result.position)
          if (from && !result.recovered) {
            stream.sendEvent({ event: 'reset', data: JSON.stringify({ topic, ...result.position }) })
          }
        }
        stream.sendPosition()
      }, sseOptions)
    },
    attach(peer, user) {
      if (states.has(peer)) return
      states.set(peer, {
        peer,
        user,
        identity: identify ? identify(user, peer) : { id: peer.id, info: null },
        closed: false,
      })
    },
    detach(peer) {
      const state = states.get(peer)
      if (!state) return
      state.closed = true
      states.delete(peer)
      for (const name of [...peer.topics]) void leave(state, name)
    },
    async subscribe(peer, topic, since) {
      const state = states.get(peer)
      if (!state) throw new Error('hub.subscribe: attach the peer first')
      return subscribePeer(state, topic, since, () => {})
    },
    async unsubscribe(peer, topic) {
      const state = states.get(peer)
      if (state) await leave(state, topic)
    },
    async presence(topic) {
      const members = await engine.presenceList(checkTopic(topic))
      const byUser = new Map<string, unknown>()
      for (const member of members) if (!byUser.has(member.userId)) byUser.set(member.userId, member.info)
      return [...byUser.values()]
    },
    stop: () => engine.close(),
  }
  return hub
}
