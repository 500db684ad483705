import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { AuthEnv, AuthUser, AuthVariables } from '@flumen/auth'
import { auth, jwt, sessionCookie, topicRules } from '@flumen/auth'
import type { Engine, Hub } from '@flumen/broadcast'
import { createHub, recentMessages } from '@flumen/broadcast'
import { redisEngine } from '@flumen/broadcast-redis'
import { sqliteEngine } from '@flumen/broadcast-sqlite'
import type { FlumenEnv, FlumenPlugin } from '@flumen/core'
import { createApp, createId, FlumenError } from '@flumen/core'
import { inspector } from '@flumen/inspector'
import { flumenMetrics, flumenTracing } from '@flumen/metrics'
import type { StoredFile, UploadEvent, UploadsRoute } from '@flumen/uploads'
import { diskStorage, download, tus, uploads } from '@flumen/uploads'
import { yjs } from '@flumen/yjs'
import type { Context, Hono, MiddlewareHandler } from 'hono'
import { basicAuth } from 'hono/basic-auth'
import { bodyLimit } from 'hono/body-limit'
import { secureHeaders } from 'hono/secure-headers'
import { rateLimiter } from 'hono-rate-limiter'
import { SignJWT } from 'jose'
import { Counter, collectDefaultMetrics, Registry } from 'prom-client'
import { clientAssets } from './assets.js'
import type { DemoConfig } from './config.js'
import type { ChatMessage, Contract, RoomEvent } from './contract.js'
import { contract } from './contract.js'
import { liveDashboard } from './dashboard.js'
import { directoryOf } from './directory.js'

const namePattern = /^[A-Za-z0-9_-]{1,32}$/
const clientIdPattern = /^[\w-]{1,64}$/
const maxTextLength = 2000
/** The session cookie: sign-in lasts this long unless the user signs out (which revokes it). */
const sessionTtlSec = 12 * 3600
/**
 * Bearer tokens are short-lived and renewed with the session (`GET /api/token`): after sign-out no
 * new one is issued, and live connections end when the last one expires (WebSocket close 4001).
 */
const tokenTtlSec = 15 * 60
const issuer = 'flumen-rooms'

export interface Demo {
  app: Hono<FlumenEnv>
  hub: Hub<AuthUser, Contract>
  /** Plugins to pass to serve(): the hub (and its engine) and the dashboard timer. */
  plugins: FlumenPlugin[]
}

/** Flumen Rooms: sessions, rooms with chat and presence, file sharing with progress, a live dashboard. */
export const buildDemo = (config: DemoConfig): Demo => {
  // Rooms, their history and the files shared in them (a room's `file` messages) survive a restart:
  // in DATA_DIR/flumen.db on one node, in Redis when there are several.
  const engine: Engine = config.redisUrl
    ? redisEngine({ url: config.redisUrl, prefix: 'flumen-rooms:' })
    : sqliteEngine({ file: join(config.dataDir, 'flumen.db') })
  const cookieSecret = createHash('sha256').update(`${config.jwtSecret}:cookie`).digest('hex')
  const session = sessionCookie({ secret: cookieSecret, name: 'rooms_session', maxAgeSec: sessionTtlSec })
  const jwtKey = new TextEncoder().encode(config.jwtSecret)
  const issueToken = (user: AuthUser): Promise<string> =>
    new SignJWT({ name: user.name })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.id)
      .setIssuer(issuer)
      .setIssuedAt()
      .setExpirationTime(`${tokenTtlSec}s`)
      .sign(jwtKey)
  const authn = auth({
    strategies: [jwt({ secret: config.jwtSecret, issuer }), session],
    allowedOrigins: config.allowedOrigins,
    queryToken: true, // for clients that can set neither headers nor subprotocols; tokens are short-lived
  })
  // Every hub route is behind authn: the hub's callbacks get its AuthUser.
  // One contract with the page (src/contract.ts): what clients publish is checked before
  // beforePublish sees it, what the server publishes before it is stored.
  const hub = createHub<AuthUser, Contract>({
    contract,
    engine,
    authenticate: authn.verifyToken,
    // Clients write to rooms, but what a room carries is what the server makes of it: the sender
    // as the session names them, never as a client claims (see beforePublish).
    authorize: topicRules({
      'room:*': ['subscribe', 'publish'],
      directory: ['subscribe'],
      dashboard: ['subscribe'],
    }),
    beforePublish: (request) => {
      if (request.pattern !== 'room:{name}') throw new FlumenError('FORBIDDEN', 'Only rooms take messages')
      const room = request.params.name!
      const { data, user } = request
      // Typing is news for a moment: volatile only. Chat lines are kept: never volatile.
      if ('typing' in data) {
        if (!request.volatile) throw new FlumenError('BAD_REQUEST', 'Send typing as a volatile publish')
        return { type: 'typing', from: personOf(user), typing: data.typing }
      }
      if (request.volatile) throw new FlumenError('BAD_REQUEST', 'Chat messages are stored: not volatile')
      const message = chatMessage(user, room, data.text, data.id)
      roomActivity.count(room)
      chatTotal.inc()
      return message
    },
  })
  const storage = diskStorage({ dir: join(config.dataDir, 'files') })
  // Each room has shared notes: the Yjs document `room-<name>`, which everyone signed in may edit.
  const notes = yjs({
    hub,
    authorize: ({ document }) =>
      document.startsWith('room-') && namePattern.test(document.slice('room-'.length)) ? 'write' : 'none',
  })

  // Metrics (Prometheus text format).
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'rooms_' })
  const uploadsTotal = new Counter({
    name: 'rooms_uploads_total',
    help: 'Uploads by result',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const chatTotal = new Counter({
    name: 'rooms_chat_messages_total',
    help: 'Chat messages sent',
    registers: [registry],
  })

  const personOf = (user: AuthUser): { id: string; name: string } => ({
    id: user.id,
    name: user.name ?? user.id,
  })
  const roomActivity = directoryOf(hub, namePattern)

  /** A chat message from `user`, checked; a client's id names it (and makes a retry the same message). */
  const chatMessage = (user: AuthUser, room: string, text: unknown, clientId?: unknown): ChatMessage => {
    if (!namePattern.test(room))
      throw new FlumenError('BAD_REQUEST', 'Room names are 1-32 of A-Z a-z 0-9 _ -')
    if (typeof text !== 'string' || text.trim().length === 0)
      throw new FlumenError('BAD_REQUEST', 'The message is empty')
    if (text.length > maxTextLength)
      throw new FlumenError('TOO_LARGE', `Messages are at most ${maxTextLength} characters`)
    const id =
      typeof clientId === 'string' && clientIdPattern.test(clientId) ? `${user.id}:${clientId}` : createId()
    return {
      type: 'chat',
      id,
      from: personOf(user),
      text: text.trim(),
      at: Date.now(),
    }
  }
  /** Publishes a chat message from the HTTP API; a client id makes a retried POST publish once. */
  const sendChat = async (
    user: AuthUser,
    room: string,
    text: unknown,
    clientId?: unknown,
  ): Promise<number> => {
    const message = chatMessage(user, room, text, clientId)
    const offset = await hub.publish(`room:${room}`, message, { key: message.id })
    roomActivity.count(room)
    chatTotal.inc()
    return offset
  }

  const app = createApp()
  // OpenTelemetry spans for every request, publish, call and delivery: recorded by the SDK the process
  // registers (e.g. `node --import @opentelemetry/auto-instrumentations-node/register`), no-ops without one.
  app.use('*', flumenTracing({ hub }).middleware)
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'same-origin' }))

  // Live connections: authenticated first (401), then the Origin, whatever the credential (403).
  const sameOriginOnly: MiddlewareHandler = async (c, next) => {
    const origin = c.req.header('origin')
    if (
      origin !== undefined &&
      origin !== new URL(c.req.url).origin &&
      !config.allowedOrigins.includes(origin)
    )
      throw new FlumenError('FORBIDDEN', 'Origin not allowed')
    await next()
  }

  // Write routes are rate limited per user (per address before sign-in), like the socket's own
  // limit: the HTTP chat route must not be a way around it.
  type WriteEnv = FlumenEnv & { Variables: Partial<AuthVariables> }
  const clientAddress = (c: Context<WriteEnv>): string => c.env.incoming.socket.remoteAddress ?? 'unknown'
  const writeLimit = (limit: number, windowMs: number): MiddlewareHandler<WriteEnv> =>
    rateLimiter<WriteEnv>({
      windowMs,
      limit,
      standardHeaders: 'draft-7',
      keyGenerator: (c) => {
        const user = c.var.user
        return user ? `user:${user.id}` : `ip:${clientAddress(c)}`
      },
      message: { error: { code: 'RATE_LIMITED', message: 'Too many requests: wait a moment and try again' } },
    })

  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/metrics', async (c) =>
    c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }),
  )

  app.post('/api/session', writeLimit(20, 60_000), bodyLimit({ maxSize: 4096 }), async (c) => {
    let body: unknown
    try {
      body = await c.req.json()
    } catch {
      throw new FlumenError('BAD_REQUEST', 'Send JSON: {"name":"alice"}')
    }
    const name = (body as { name?: unknown } | null)?.name
    if (typeof name !== 'string' || !namePattern.test(name))
      throw new FlumenError('BAD_REQUEST', 'Names are 1-32 characters of A-Z a-z 0-9 _ -')
    const user = { id: createId(), name }
    const token = await issueToken(user)
    session.issue(c, user)
    return c.json({ token, user })
  })
  // Revokes the session, not only the browser's cookie: a copy made before no longer works.
  app.post('/api/logout', writeLimit(20, 60_000), async (c) => {
    await session.revoke(c)
    return c.body(null, 204)
  })
  app.get('/api/token', authn, async (c) => {
    // A fresh token for the signed-in user (the page's client refreshes with it).
    return c.json({ token: await issueToken(c.var.user) })
  })
  app.get('/api/me', authn, (c) => c.json(c.var.user))
  // Who is signed in on this browser (null: nobody), and the limits the page explains errors with.
  const sessionOrNone = auth({ strategies: [session], optional: true })
  app.get('/api/session', sessionOrNone, (c) =>
    c.json({ user: c.var.user ?? null, limits: { uploadMaxBytes: config.uploadMaxBytes } }),
  )

  app.post(
    '/api/rooms/:room/messages',
    authn,
    writeLimit(60, 10_000),
    bodyLimit({ maxSize: 16 * 1024 }),
    async (c) => {
      let body: { text?: unknown; id?: unknown }
      try {
        body = (await c.req.json()) as typeof body
      } catch {
        throw new FlumenError('BAD_REQUEST', 'Send JSON: {"text":"hello"}')
      }
      return c.json({ offset: await sendChat(c.var.user, c.req.param('room'), body?.text, body?.id) })
    },
  )

  // The recent messages of a room (of its last 100): what a page shows when it joins a room, and what it
  // loads again when a gap could not be recovered over the socket (the `reset` event: the gap left
  // the history window, or Redis lost it).
  app.get('/api/rooms/:room/messages', authn, async (c) => {
    const room = c.req.param('room')
    if (!namePattern.test(room))
      throw new FlumenError('BAD_REQUEST', 'Room names are 1-32 of A-Z a-z 0-9 _ -')
    const { position, messages } = await recentMessages(hub.engine, `room:${room}`, 100)
    // The room's lines: chat and files, not how uploads ended (those are for the live pages).
    const lines = messages
      .map((message) => ({ offset: message.offset, data: JSON.parse(message.data) as RoomEvent }))
      .filter(({ data }) => data.type === 'chat' || data.type === 'file')
    return c.json({ epoch: position.epoch, offset: position.offset, messages: lines })
  })

  // Uploads: the room sees a file arriving (who, which, how far: volatile ticks), then the file.
  const roomOf = (c: Context): string => c.req.query('room') ?? ''
  const roomProgress = {
    intervalMs: 200,
    publisher: hub,
    toMessage: (event: UploadEvent, c: Context<AuthEnv>) => ({ ...event, from: personOf(c.var.user) }),
  }
  /** Announces a stored file in its room. */
  const shareInRoom = async (room: string, file: StoredFile, uploadId: string, user: AuthUser) => {
    const record = {
      id: file.id,
      name: file.name,
      size: file.size,
      type: file.type,
      sha256: file.sha256,
      url: `/files/${file.id}`,
      uploadId,
      from: personOf(user),
      at: Date.now(),
    }
    await hub.publish(`room:${room}`, { type: 'file', file: record })
    roomActivity.count(room)
    return record
  }
  const uploadRoute: UploadsRoute<AuthEnv> = uploads<AuthEnv>({
    storage,
    limits: { fileSize: config.uploadMaxBytes, totalSize: config.uploadMaxBytes + 64 * 1024, files: 1 },
    progress: { ...roomProgress, topic: (c) => `room:${roomOf(c)}` },
    onComplete: async ({ files, uploadId }, c) => {
      const file = files[0]
      if (!file) throw new FlumenError('BAD_REQUEST', 'Send a file in the field "file"')
      return c.json(await shareInRoom(roomOf(c), file, uploadId, c.var.user), 201)
    },
  })
  // Resumable uploads (tus, what @flumen/client's resumableUpload speaks): the room is named in the
  // upload's metadata at creation; a drop or a reload continues from the server's offset.
  const resumable = tus<AuthEnv>({
    storage,
    maxSize: config.uploadMaxBytes,
    maxUploadsPerOwner: 10,
    progress: {
      ...roomProgress,
      topic: (_c, metadata) => (namePattern.test(metadata.room ?? '') ? `room:${metadata.room}` : undefined),
    },
    onComplete: async (file, c, metadata) => {
      const room = metadata.room ?? ''
      if (namePattern.test(room)) await shareInRoom(room, file, file.id, c.var.user)
      uploadsTotal.inc({ result: 'done' })
    },
  })
  app.post(
    '/api/uploads',
    authn,
    writeLimit(30, 60_000),
    async (c, next) => {
      if (!namePattern.test(roomOf(c))) throw new FlumenError('BAD_REQUEST', 'Add ?room=<room name>')
      try {
        await next()
      } finally {
        uploadsTotal.inc({ result: c.res.status === 201 ? 'done' : 'failed' })
      }
    },
    uploadRoute,
  )

  app.use('/api/files/*', authn, async (c, next) => {
    // A resumable upload names its room when it is created (POST): refuse one without a valid room.
    if (c.req.method === 'POST') {
      const room = /(?:^|,)\s*room ([A-Za-z0-9+/=]+)/.exec(c.req.header('upload-metadata') ?? '')?.[1]
      if (!room || !namePattern.test(Buffer.from(room, 'base64').toString()))
        throw new FlumenError('BAD_REQUEST', 'Name the room in Upload-Metadata: room <base64 name>')
    }
    await next()
  })
  app.route('/api/files', resumable)

  // The rooms that have had messages, with who is in them now (the page's room directory).
  app.get('/api/rooms', authn, async (c) => c.json({ rooms: await roomActivity.listing() }))

  // HEAD without opening the file, ranges, ETags; never rendered inline as this origin.
  app.get('/files/:id', authn, download({ storage }))

  const wsRoute = hub.websocket({ maxPayload: 64 * 1024 })
  const sseRoute = hub.sse()
  app.get('/ws', authn, sameOriginOnly, wsRoute)
  app.get('/sse', authn, sameOriginOnly, sseRoute)

  const assets = clientAssets()
  app.get('/', (c) => assets.html(c))
  app.get('/app.js', (c) => assets.script(c, 'app'))
  app.get('/charts.js', (c) => assets.script(c, 'charts'))
  app.get('/notes.js', (c) => assets.script(c, 'notes'))
  app.get('/styles.css', (c) => assets.styles(c))

  // The inspector, for the admin user only (HTTP Basic auth), when ADMIN_PASSWORD is set.
  if (config.adminPassword) {
    app.use(
      '/admin/*',
      basicAuth({ username: 'admin', password: config.adminPassword, realm: 'Flumen Rooms admin' }),
    )
    app.route('/admin/inspector', inspector({ hub, readOnly: false }))
  }

  // Flumen's own metrics on the app's registry, beside the room counters and process metrics.
  flumenMetrics({
    registry,
    hub,
    websocket: { '/ws': wsRoute },
    sse: { '/sse': sseRoute },
    uploads: { '/api/uploads': uploadRoute, '/api/files': resumable },
  })
  const dashboard = liveDashboard({
    hub,
    wsRoute,
    sseRoute,
    uploadRoutes: [uploadRoute, resumable],
    roomActivity,
  })

  // The notes after the hub: they save their snapshots before the engine closes.
  return { app, hub, plugins: [hub, notes, dashboard, roomActivity] }
}
