import { createHub } from '@flumen/broadcast'
import { redisEngine } from '@flumen/broadcast-redis'
import type { FlumenServer } from '@flumen/core'
import { createApp, FlumenError, serve } from '@flumen/core'
import type { ProtocolClient } from '@flumen/testing'
import { openProtocolClient, requireRedis, startRedis, waitFor } from '@flumen/testing'
import { memoryStorage, uploads } from '@flumen/uploads'
import { Hono } from 'hono'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import type { FlumenMetrics } from './index.js'
import { flumenMetrics } from './index.js'

const servers: FlumenServer[] = []
const clients: ProtocolClient[] = []
const streams: AbortController[] = []
const metricSets: FlumenMetrics[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  for (const stream of streams.splice(0)) stream.abort()
  for (const metrics of metricSets.splice(0)) metrics.close()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

/** `name{labels} value` lines of a Prometheus text exposition, as a map. */
const parse = (text: string): Map<string, number> =>
  new Map(
    text
      .split('\n')
      .filter((line) => line.length > 0 && !line.startsWith('#'))
      .map((line) => {
        const at = line.lastIndexOf(' ')
        return [line.slice(0, at), Number(line.slice(at + 1))] as const
      }),
  )

const start = async () => {
  const hub = createHub({ logError: () => {} })
  hub.method('double', (data) => (data as number) * 2)
  hub.method('refuse', () => {
    throw new FlumenError('FORBIDDEN', 'no')
  })
  const app = createApp()
  const wsRoute = hub.websocket({ rateLimit: { messagesPerSecond: 1, burst: 20 } })
  const sseRoute = hub.sse()
  const uploadRoute = uploads({ storage: memoryStorage() })
  app.get('/ws', wsRoute)
  app.get('/sse', sseRoute)
  app.post('/upload', uploadRoute)
  const metrics = flumenMetrics({
    hub,
    websocket: { '/ws': wsRoute },
    sse: { '/sse': sseRoute },
    uploads: { '/upload': uploadRoute },
  })
  metricSets.push(metrics)
  app.get('/metrics', metrics.handler)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  const base = `127.0.0.1:${server.port}`
  const scrape = async (): Promise<Map<string, number>> => {
    const response = await fetch(`http://${base}/metrics`)
    expect(response.headers.get('content-type')).toContain('text/plain')
    return parse(await response.text())
  }
  return { hub, base, scrape }
}

const connect = async (base: string): Promise<ProtocolClient> => {
  const client = await openProtocolClient(`ws://${base}/ws`)
  clients.push(client)
  return client
}

describe('flumenMetrics', () => {
  it('counts what a user does over WebSocket, SSE, uploads and RPC, served on /metrics', async () => {
    const { base, scrape } = await start()
    const reader = await connect(base)
    const writer = await connect(base)
    await reader.request({ type: 'subscribe', id: 1, topic: 'room' })
    const stream = new AbortController()
    streams.push(stream)
    const sse = await fetch(`http://${base}/sse?topic=room`, { signal: stream.signal })
    expect(sse.status).toBe(200)
    for (let id = 2; id < 5; id++) writer.send({ type: 'publish', id, topic: 'room', data: `m${id}` })
    writer.send({ type: 'call', id: 5, method: 'double', data: 2 })
    await writer.request({ type: 'call', id: 6, method: 'refuse' })
    await expect.poll(() => reader.received.filter((m) => m.type === 'message').length).toBe(3)
    const form = new FormData()
    form.append('file', new Blob(['x'.repeat(1000)]), 'a.txt')
    expect((await fetch(`http://${base}/upload`, { method: 'POST', body: form })).status).toBe(201)

    const metrics = await scrape()
    expect(metrics.get('flumen_connections{transport="ws",route="/ws"}')).toBe(2)
    expect(metrics.get('flumen_connections{transport="sse",route="/sse"}')).toBe(1)
    expect(metrics.get('flumen_hub_connections')).toBe(3)
    expect(metrics.get('flumen_hub_topics')).toBe(1)
    expect(metrics.get('flumen_hub_subscriptions')).toBe(2)
    expect(metrics.get('flumen_hub_presence_members')).toBe(2) // the reader's socket and the stream
    expect(metrics.get('flumen_hub_published_messages_total')).toBe(3)
    expect(metrics.get('flumen_messages_received_total{transport="ws",route="/ws"}')).toBe(6)
    expect(metrics.get('flumen_frames_sent_total{transport="ws",route="/ws"}')).toBeGreaterThanOrEqual(7)
    expect(metrics.get('flumen_frames_sent_total{transport="sse",route="/sse"}')).toBeGreaterThanOrEqual(1)
    expect(metrics.get('flumen_rpc_calls_total{method="double",result="ok"}')).toBe(1)
    expect(metrics.get('flumen_rpc_calls_total{method="refuse",result="FORBIDDEN"}')).toBe(1)
    expect(metrics.get('flumen_rpc_duration_seconds_count{method="double"}')).toBe(1)
    expect(metrics.get('flumen_engine_publish_duration_seconds_count{kind="stored"}')).toBe(3)
    expect(metrics.get('flumen_hub_writes_total')).toBeGreaterThanOrEqual(1)
    expect(metrics.get('flumen_hub_write_delay_seconds_count')).toBe(metrics.get('flumen_hub_writes_total'))
    expect(metrics.get('flumen_uploads_total{route="/upload",result="completed"}')).toBe(1)
    expect(metrics.get('flumen_upload_bytes_total{route="/upload"}')).toBe(1000)
    expect(metrics.get('flumen_uploads_active{route="/upload"}')).toBe(0)
  })

  it('counts rate-limited messages and engine errors by code', async () => {
    const { hub, base, scrape } = await start()
    const flooder = await connect(base)
    for (let id = 1; id <= 30; id++) flooder.send({ type: 'ping', id })
    await expect.poll(() => flooder.received.length).toBe(30)
    await hub.engine.close()
    await expect(hub.publish('room', 'x')).rejects.toThrow()
    const metrics = await scrape()
    expect(
      metrics.get('flumen_rate_limited_messages_total{transport="ws",route="/ws"}'),
    ).toBeGreaterThanOrEqual(9)
    expect(
      [...metrics.keys()].filter((name) => name.startsWith('flumen_engine_publish_errors_total')),
    ).toHaveLength(1)
  })

  it('reports the engine unavailable while Redis is down', async () => {
    if (!(await requireRedis())) return
    const redis = await startRedis()
    const hub = createHub({ engine: redisEngine({ url: redis.url, logError: () => {} }) })
    const metrics = flumenMetrics({ hub })
    metricSets.push(metrics)
    const available = async (): Promise<string> =>
      /flumen_engine_available (\d)/.exec(await metrics.registry.metrics())?.[1] ?? 'missing'
    try {
      await hub.publish('up', 1)
      expect(await available()).toBe('1')
      await redis.stop()
      await waitFor(async () => (await available()) === '0', 5_000)
    } finally {
      await hub.engine.close()
      await redis.destroy()
    }
  })

  it('works on an app registry beside its own metrics, in a plain Hono app, and leaves it clean on close', async () => {
    const registry = new Registry()
    registry.registerMetric(
      new (await import('prom-client')).Counter({
        name: 'app_requests_total',
        help: 'App requests',
        registers: [],
      }),
    )
    const hub = createHub()
    const metrics = flumenMetrics({ registry, hub, prefix: 'rooms_' })
    const app = new Hono()
    app.get('/metrics', metrics.handler)
    const text = await (await app.request('/metrics')).text()
    expect(text).toContain('app_requests_total 0')
    expect(text).toContain('rooms_hub_connections 0')
    expect(text).toContain('# TYPE rooms_hub_write_delay_seconds histogram')
    metrics.close()
    expect(registry.getMetricsAsArray().map((metric) => metric.name)).toEqual(['app_requests_total'])
    // The hub is no longer observed: a second set registers again without a name clash.
    metricSets.push(flumenMetrics({ registry, hub, prefix: 'rooms_' }))
    await hub.engine.close()
  })

  it('refuses options that cannot work, with the option named', () => {
    expect(() => flumenMetrics({ prefix: '1bad' })).toThrow('flumenMetrics: prefix')
    expect(() => flumenMetrics({ buckets: [1, 0.5] })).toThrow('flumenMetrics: buckets')
    expect(() => flumenMetrics({ hub: {} as never })).toThrow('flumenMetrics: hub must come from createHub()')
    expect(() => flumenMetrics({ websocket: { '/ws': {} as never } })).toThrow(
      'flumenMetrics: websocket["/ws"] is not a Flumen route',
    )
    expect(() => flumenMetrics({ sse: { '': { stats: {} } as never } })).toThrow('empty route label')
  })
})
