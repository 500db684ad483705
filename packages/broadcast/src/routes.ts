// The hub's two routes: protocol v1 over WebSocket (@flumen/ws), and topic streams over SSE
// (@flumen/sse) for clients that only read.
import type { FlumenPlugin } from '@flumen/core'
import { bindingsOf, FlumenError } from '@flumen/core'
import type { SseOptions, SseRoute } from '@flumen/sse'
import { decodeCursor, sse } from '@flumen/sse'
import type { WebSocketEvents, WebSocketOptions, WebSocketRoute } from '@flumen/ws'
import { upgradeWebSocket } from '@flumen/ws'
import type { Env } from 'hono'
import type { Access } from './access.js'
import { deltaEncoding } from './delta-delivery.js'
import type { Peers } from './peers.js'
import { errorEnvelope, protocolName } from './protocol.js'
import type { ProtocolSession } from './session.js'
import type { Subscriptions } from './subscriptions.js'

export interface RouteContext<User> {
  /** The hub itself: its routes register it with the server that serves them (it closes with it). */
  readonly hub: () => FlumenPlugin
  readonly peers: Peers<User>
  readonly session: ProtocolSession<User>
  readonly subscriptions: Subscriptions<User>
  readonly access: Access<User>
  readonly maxSubscriptions: number
}

export const websocketRoute = <User>(
  { peers, session, hub }: RouteContext<User>,
  options: WebSocketOptions,
): WebSocketRoute<Env, User> => {
  const events: WebSocketEvents<User> = {
    onOpen: (_event, ws) => {
      peers.attach(ws.peer, ws.peer.user)
    },
    onMessage: (event, ws) => {
      const state = peers.get(ws.peer)
      if (!state) return
      if (typeof event.data === 'string') session.receive(state, event.data)
      else
        peers.topics.reply(
          ws.peer,
          errorEnvelope(undefined, 'BAD_REQUEST', 'Binary messages are not accepted'),
        )
    },
    onClose: (_event, ws) => peers.detach(ws.peer),
    // Each dropped message gets its own error, with its id: a client waiting on it never hangs.
    onRateLimited: (data, ws) => {
      const id = typeof data === 'string' ? session.messageId(data) : undefined
      peers.topics.reply(ws.peer, errorEnvelope(id, 'RATE_LIMITED', 'Too many messages'))
    },
  }
  return upgradeWebSocket<Env, User>(
    (c) => {
      bindingsOf(c).flumen?.register(hub())
      return events
    },
    {
      ...options,
      protocols: options.protocols ?? [protocolName],
    },
  )
}

export const sseRoute = <User>(
  { peers, subscriptions, access, maxSubscriptions, hub }: RouteContext<User>,
  options: SseOptions,
): SseRoute<Env, User> =>
  sse<Env, User>(async (stream, c) => {
    bindingsOf(c).flumen?.register(hub())
    const topics = [...new Set(c.req.queries('topic') ?? [])]
    if (topics.length === 0) throw new FlumenError('BAD_REQUEST', 'Give at least one ?topic=')
    if (topics.length > maxSubscriptions)
      throw new FlumenError('BAD_REQUEST', `More than ${maxSubscriptions} topics on one stream`)
    for (const topic of topics) access.checkTopic(topic)
    const delta = c.req.query('delta')
    if (delta !== undefined && delta !== deltaEncoding)
      throw new FlumenError('BAD_REQUEST', `delta must be "${deltaEncoding}"`)
    const since = decodeCursor(stream.lastEventId)
    const state = peers.attach(stream, stream.user)
    stream.onClose(() => peers.detach(stream))
    // Every topic is authorized before any is subscribed: a stream refused one of its topics
    // (a 403) never joined the others, so nobody saw it come and go.
    for (const topic of topics) await access.requireAllowed(state, 'subscribe', topic)
    for (const topic of topics) {
      const from = since.get(topic)
      const result = await subscriptions.subscribe(state, topic, from, () => {}, {
        authorized: true,
        delta: delta !== undefined,
      })
      if (!stream.positions.has(topic)) stream.positions.set(topic, result.position)
      if (from && !result.recovered)
        stream.sendEvent({ event: 'reset', data: JSON.stringify({ topic, ...result.position }) })
    }
    stream.sendPosition()
  }, options)
