// inspector(): a Hono sub-app that shows what a running hub holds (its node's connections and
// topics, a topic's presence and newest messages) as a JSON API and a small page, and, when it is
// not read-only, lets an operator close a connection or publish to a topic. Mount it behind your
// own authentication: it shows who is connected.
import type { ConnectionInfo, Hub, HubSnapshot } from '@flumen/broadcast'
import { recentMessages } from '@flumen/broadcast'
import { FlumenError, positiveInteger } from '@flumen/core'
import type { Context, MiddlewareHandler } from 'hono'
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { pageHtml, pageIcon, pageScript, pageStyles } from './page.js'

/** What the inspector needs of a hub (any `createHub()` hub, whatever its user and contract types). */
export type InspectableHub<User = unknown> = Pick<
  Hub<User>,
  'inspect' | 'disconnect' | 'presence' | 'engine' | 'stats'
> & {
  publish(topic: string, data: unknown): Promise<number>
}

export interface InspectorOptions<User = unknown> {
  hub: InspectableHub<User>
  /**
   * Refuse the actions (closing a connection, publishing): the inspector only shows.
   * @default true
   */
  readOnly?: boolean
  /**
   * What the inspector shows of a connection's user: keep it to what an operator may see.
   * @default its `id` and `name` when it has them, else null
   */
  describeUser?: (user: User) => unknown
  /**
   * Most connections one listing returns (the newest first; `total` says how many there are).
   * @default 500
   */
  maxConnections?: number
  /**
   * Most topics one listing returns (the most subscribed first), each with one position and one
   * count read at the engine.
   * @default 200
   */
  maxTopics?: number
  /**
   * Newest messages shown for a topic (at most 1,000).
   * @default 50
   */
  recentMessages?: number
}

const defaultDescribeUser = (user: unknown): unknown => {
  if (typeof user !== 'object' || user === null) return null
  const { id, name } = user as { id?: unknown; name?: unknown }
  return id === undefined && name === undefined ? null : { id, name }
}

const escapeAttribute = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

/**
 * Actions change state: they take JSON only (a cross-site form cannot send it without a CORS
 * preflight), and a browser must say the request is its page's own. Sec-Fetch-Site is the browser's
 * own verdict and holds behind a TLS proxy (where this server's URL is not the public one); a
 * browser without it is held to Origin against this server's URL.
 */
const sameOriginJson: MiddlewareHandler = async (c, next) => {
  if (!c.req.header('content-type')?.toLowerCase().startsWith('application/json'))
    throw new FlumenError('UNSUPPORTED_MEDIA_TYPE', 'Send application/json')
  const site = c.req.header('sec-fetch-site')
  const origin = c.req.header('origin')
  const foreign =
    site !== undefined
      ? site !== 'same-origin' && site !== 'none'
      : origin !== undefined && origin !== new URL(c.req.url).origin
  if (foreign) throw new FlumenError('FORBIDDEN', 'Cross-origin request refused')
  await next()
}

export const inspector = <User = unknown>(options: InspectorOptions<User>): Hono => {
  const hub = options?.hub
  if (typeof hub?.inspect !== 'function' || typeof hub.disconnect !== 'function')
    throw new Error('inspector: hub must come from createHub() of @flumen/broadcast')
  const readOnly = options.readOnly ?? true
  if (typeof readOnly !== 'boolean') throw new Error('inspector: readOnly must be true or false')
  const describeUser = (options.describeUser ?? defaultDescribeUser) as (user: User) => unknown
  if (typeof describeUser !== 'function') throw new Error('inspector: describeUser must be a function')
  const maxConnections = positiveInteger('inspector', 'maxConnections', options.maxConnections ?? 500)
  const maxTopics = positiveInteger('inspector', 'maxTopics', options.maxTopics ?? 200)
  const recentCount = positiveInteger('inspector', 'recentMessages', options.recentMessages ?? 50)
  if (recentCount > 1000) throw new Error('inspector: recentMessages must be at most 1000')

  const connectionView = (connection: ConnectionInfo<User>) => ({
    ...connection,
    user: describeUser(connection.user),
  })
  const writable = (): void => {
    if (readOnly) throw new FlumenError('FORBIDDEN', 'The inspector is read-only')
  }
  const topicParam = (c: Context): string => c.req.param('topic') ?? ''
  /** The topic's offset and how many messages the engine keeps of it (null: it cannot count). */
  const stored = async (name: string): Promise<{ offset: number; historyLength: number | null }> => {
    const [{ position }, historyLength] = await Promise.all([
      hub.engine.history(name),
      hub.engine.historyLength ? hub.engine.historyLength(name) : null,
    ])
    return { offset: position.offset, historyLength }
  }

  const app = new Hono()
  app.get('/', (c) => {
    const base = c.req.path.replace(/\/+$/, '')
    c.header('cache-control', 'no-store')
    return c.html(pageHtml(escapeAttribute(base)))
  })
  app.get('/inspector.js', (c) =>
    c.body(pageScript, 200, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'no-cache',
    }),
  )
  app.get('/favicon.svg', (c) =>
    c.body(pageIcon, 200, { 'content-type': 'image/svg+xml', 'cache-control': 'max-age=86400' }),
  )
  app.get('/inspector.css', (c) =>
    c.body(pageStyles, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'no-cache' }),
  )

  app.get('/api/overview', (c) => {
    const { stats } = hub
    return c.json({
      readOnly,
      stats: {
        connections: stats.peers,
        topics: stats.topics,
        subscriptions: stats.subscriptions,
        presenceMembers: stats.presenceMembers,
        published: stats.published,
        delivered: stats.delivered,
        dropped: stats.dropped,
      },
    })
  })
  app.get('/api/connections', (c) => {
    const topic = c.req.query('topic')
    const snapshot: HubSnapshot<User> = hub.inspect()
    const listed = snapshot.connections
      .filter((connection) => topic === undefined || connection.topics.includes(topic))
      .sort((a, b) => b.connectedAt - a.connectedAt)
    return c.json({
      total: listed.length,
      connections: listed.slice(0, maxConnections).map(connectionView),
    })
  })
  app.get('/api/topics', async (c) => {
    const held = [...hub.inspect().topics].sort((a, b) => b.subscribers - a.subscribers)
    const listed = held.slice(0, maxTopics)
    const counts = await Promise.all(listed.map((topic) => stored(topic.name)))
    return c.json({
      total: held.length,
      topics: listed.map((topic, i) => ({ ...topic, ...counts[i] })),
    })
  })
  app.get('/api/topics/:topic', async (c) => {
    const name = topicParam(c)
    // presence() checks the name (BAD_REQUEST for one the hub would refuse) before the engine reads.
    const presence = await hub.presence(name)
    const [{ position, messages }, { historyLength }] = await Promise.all([
      recentMessages(hub.engine, name, recentCount),
      stored(name),
    ])
    const held = hub.inspect().topics.find((topic) => topic.name === name)
    return c.json({
      name,
      position,
      historyLength,
      subscribers: held?.subscribers ?? 0,
      presence,
      messages: messages.map((message) => ({ offset: message.offset, data: JSON.parse(message.data) })),
    })
  })

  app.post('/api/connections/:id/disconnect', sameOriginJson, (c) => {
    writable()
    if (!hub.disconnect(c.req.param('id')))
      throw new FlumenError('NOT_FOUND', 'No such connection on this node')
    return c.body(null, 204)
  })
  /** What one publish from the inspector may carry (the WebSocket route's default `maxPayload`). */
  const maxPublishBytes = 1_048_576
  const publishBodyLimit = bodyLimit({
    maxSize: maxPublishBytes,
    onError: () => {
      throw new FlumenError('TOO_LARGE', `A publish is at most ${maxPublishBytes} bytes`)
    },
  })
  app.post('/api/topics/:topic/messages', sameOriginJson, publishBodyLimit, async (c) => {
    writable()
    let body: unknown
    try {
      body = await c.req.json()
    } catch {
      throw new FlumenError('BAD_REQUEST', 'Send JSON: {"data": …}')
    }
    if (typeof body !== 'object' || body === null || !('data' in body))
      throw new FlumenError('BAD_REQUEST', 'Send JSON: {"data": …}')
    return c.json({ offset: await hub.publish(topicParam(c), (body as { data: unknown }).data) })
  })
  return app
}
