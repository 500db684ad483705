// One Flumen node for the multi-process tests: a hub on the Redis engine with its WebSocket and
// SSE routes. Started with fork(); reports its port over IPC; `stop` closes it gracefully.
import { createHub } from '@flumen/broadcast'
import { createApp, serve } from '@flumen/core'
import { redisEngine } from './index.js'

// REDIS_URL for one Redis, CLUSTER (JSON startup nodes) for a Redis Cluster.
const topology = process.env.CLUSTER
  ? { cluster: JSON.parse(process.env.CLUSTER) as { host: string; port: number }[] }
  : { url: process.env.REDIS_URL! }
const engine = redisEngine({
  ...topology,
  prefix: process.env.PREFIX!,
  nodeTtlMs: Number(process.env.NODE_TTL_MS ?? 10_000),
  positionCheckMs: Number(process.env.POSITION_CHECK_MS ?? 5_000),
  unavailableAfterMs: 200,
  logError: () => {},
})
interface User {
  id: string
  name: string
}
const hub = createHub<User>({ engine, logError: () => {} })
const app = createApp<{ Variables: { user: User } }>({ logError: () => {} })
app.use('*', async (c, next) => {
  const user = c.req.query('user') ?? 'anon'
  c.set('user', { id: user, name: user })
  await next()
})
app.get('/ws', hub.websocket({ rateLimit: { messagesPerSecond: 10_000, burst: 10_000 } }))
app.get('/sse', hub.sse({ heartbeatMs: false, retryMs: 100 }))
const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
process.send?.({ type: 'ready', port: server.port, nodeId: engine.nodeId })
process.on('message', async (message: { type: string }) => {
  if (message.type === 'stop') {
    await server.close({ timeoutMs: 500 })
    process.exit(0)
  }
})
