// WebSocket servers for echo, fan-out and idle memory. A text message that starts with '#' is
// broadcast to every connection; any other message is echoed to its sender.
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auth, jwt } from '@flumen/auth'
import { createHub } from '@flumen/broadcast'
import { redisEngine } from '@flumen/broadcast-redis'
import { sqliteEngine } from '@flumen/broadcast-sqlite'
import { defineContract } from '@flumen/contract'
import { createApp, serve as flumenServe, prepareFrame } from '@flumen/core'
import { flumenMetrics } from '@flumen/metrics'
import type { WebSocketEvents } from '@flumen/ws'
import { upgradeWebSocket as flumenUpgradeWebSocket } from '@flumen/ws'
import { serve as honoServe, upgradeWebSocket } from '@hono/node-server'
import { Hono } from 'hono'
import type { WSContext } from 'hono/ws'
import { Server as SocketIoServer } from 'socket.io'
import * as v from 'valibot'
import { WebSocketServer } from 'ws'
import { z } from 'zod'
import { announce, implementation } from './harness.js'

/** The limits a load from one machine needs lifted: every client is 127.0.0.1, at 1,000 msg/s each. */
const benchLimits = {
  rateLimit: { messagesPerSecond: 1e6, burst: 1e6 },
  maxConnections: 100_000,
  maxConnectionsPerIp: 100_000,
} as const

const impl = implementation([
  'raw',
  'hono',
  'socketio',
  'flumen',
  'flumen-hub',
  'flumen-redis',
  'flumen-redis-2',
  'flumen-cluster',
  'flumen-cluster-2',
  'flumen-sqlite',
  'flumen-sqlite-full',
  'flumen-hub-zod',
  'flumen-hub-valibot',
  'flumen-hub-deflate',
  'flumen-hub-delta',
  'flumen-hub-volatile',
  'flumen-hub-metrics',
  'raw-deflate',
  'flumen-hub-auth',
])
const hash = 0x23
const benchJwtSecret = process.env.BENCH_JWT_SECRET ?? 'flumen-bench-secret-of-at-least-32-bytes'

if (impl === 'raw' || impl === 'raw-deflate') {
  const server = createServer()
  // raw-deflate: ws's own permessage-deflate, compressing each message for each connection.
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: impl === 'raw-deflate' ? { threshold: 1024 } : false,
  })
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer, isBinary) => {
      if (data[0] === hash) {
        for (const client of wss.clients) client.send(data, { binary: isBinary })
      } else {
        ws.send(data, { binary: isBinary })
      }
    })
  })
  server.listen(0, '127.0.0.1', () => announce(server))
} else if (impl === 'hono') {
  const peers = new Set<WSContext>()
  const app = new Hono()
  app.get(
    '/',
    upgradeWebSocket(() => ({
      onOpen: (_event, ws) => {
        peers.add(ws)
      },
      onMessage: (event, ws) => {
        const data = event.data as string
        if (data.charCodeAt(0) === hash) {
          for (const peer of peers) peer.send(data)
        } else {
          ws.send(data)
        }
      },
      onClose: (_event, ws) => {
        peers.delete(ws)
      },
    })),
  )
  const server = honoServe(
    {
      fetch: app.fetch,
      port: 0,
      hostname: '127.0.0.1',
      websocket: { server: new WebSocketServer({ noServer: true }) },
    },
    () => announce(server as never),
  )
} else if (impl === 'flumen') {
  const app = createApp()
  // Defaults everywhere except the rate limit, raised so the load (about 1,000 msg/s per socket)
  // is measured rather than limited (the limiter still runs on every message), and the per-IP cap:
  // every load client is 127.0.0.1.
  const route = flumenUpgradeWebSocket(() => events, benchLimits)
  const events: WebSocketEvents = {
    onMessage: (event, ws) => {
      const data = event.data as string
      if (data.charCodeAt(0) === hash) {
        const frame = prepareFrame(data)
        for (const peer of route.peers) peer.send(frame)
      } else {
        ws.send(data)
      }
    },
  }
  app.get('/', route)
  announce(await flumenServe(app, { port: 0, hostname: '127.0.0.1' }))
} else if (
  impl.startsWith('flumen-hub') ||
  impl.startsWith('flumen-redis') ||
  impl.startsWith('flumen-cluster') ||
  impl.startsWith('flumen-sqlite')
) {
  // The broadcast hub speaking protocol v1: clients subscribe to `bench` and publish to it.
  // Presence is off: the scenario measures message delivery, not 2,000² join events at setup.
  // The Redis variants share one prefix per bench run (BENCH_REDIS_PREFIX), so nodes meet.
  // The Cluster variants start from BENCH_REDIS_CLUSTER (JSON startup nodes, set by the runner).
  const prefix = process.env.BENCH_REDIS_PREFIX ?? `flumen-bench:${process.pid}:`
  // The SQLite variants write to a database of their own, removed when the process ends.
  const sqliteFile = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'flumen-bench-sqlite-'))
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
    return join(dir, 'bench.db')
  }
  const engine = impl.startsWith('flumen-hub')
    ? undefined
    : impl.startsWith('flumen-sqlite')
      ? sqliteEngine({ file: sqliteFile(), synchronous: impl === 'flumen-sqlite-full' ? 'full' : 'normal' })
      : impl.startsWith('flumen-cluster')
        ? redisEngine({ cluster: JSON.parse(process.env.BENCH_REDIS_CLUSTER ?? '[]'), prefix })
        : redisEngine({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix })
  // The contract variants check every publish of `bench` (the load's `#000123#…` text) first.
  const contract =
    impl === 'flumen-hub-zod'
      ? defineContract({ topics: { bench: { message: z.string().regex(/^#\d{6}#/) } } })
      : impl === 'flumen-hub-valibot'
        ? defineContract({ topics: { bench: { message: v.pipe(v.string(), v.regex(/^#\d{6}#/)) } } })
        : undefined
  const hub = createHub({ presence: false, ...(engine && { engine }), ...(contract && { contract }) })
  const app = createApp()
  // flumen-hub-deflate: permessage-deflate, each hub message compressed once for all peers.
  // flumen-hub-delta: the plain hub (deltas are on by default); its load subscribes with deltas.
  // flumen-hub-volatile: the plain hub; its load publishes volatile (nothing stored).
  // flumen-hub-auth: a JWT (HS256, `?access_token=`, signed by the load with BENCH_JWT_SECRET) checked
  // by @flumen/auth before every upgrade, as an app with sign-in has it.
  if (impl === 'flumen-hub-auth')
    app.use('/', auth({ strategies: [jwt({ secret: benchJwtSecret })], queryToken: true }))
  const route = hub.websocket({ ...benchLimits, perMessageDeflate: impl === 'flumen-hub-deflate' })
  app.get('/', route)
  // flumen-hub-metrics: @flumen/metrics on the hub and the route, scraped every second (Prometheus
  // scrapes every 15 s by default: this counts the scrapes' cost more than a real setup pays).
  if (impl === 'flumen-hub-metrics') {
    const metrics = flumenMetrics({ hub, websocket: { '/': route } })
    setInterval(() => void metrics.registry.metrics(), 1000).unref()
  }
  announce(await flumenServe(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] }))
} else {
  const server = createServer()
  const io = new SocketIoServer(server, { transports: ['websocket'], serveClient: false })
  io.on('connection', (socket) => {
    socket.on('e', (data: string) => {
      socket.emit('e', data)
    })
    socket.on('b', (data: string) => {
      io.emit('m', data)
    })
  })
  server.listen(0, '127.0.0.1', () => announce(server))
}
