import { createHub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, FlumenError, serve } from '@flumen/core'
import type { ProtocolClient } from '@flumen/testing'
import { openProtocolClient } from '@flumen/testing'
import { memoryStorage, uploads } from '@flumen/uploads'
import { context, propagation, SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { FlumenTracing } from './index.js'
import { flumenTracing } from './index.js'

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
const tracer = provider.getTracer('test')
const servers: FlumenServer[] = []
const clients: ProtocolClient[] = []
const tracings: FlumenTracing[] = []

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
})
afterAll(async () => {
  context.disable()
  propagation.disable()
  await provider.shutdown()
})
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  for (const tracing of tracings.splice(0)) tracing.close()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
  exporter.reset()
})

const start = async () => {
  const hub = createHub({ logError: () => {} })
  hub.method('double', (data) => (data as number) * 2)
  hub.method('refuse', () => {
    throw new FlumenError('FORBIDDEN', 'no')
  })
  const tracing = flumenTracing({ tracer, hub })
  tracings.push(tracing)
  const app = createApp()
  app.use('*', tracing.middleware)
  app.get('/ws', hub.websocket())
  app.post('/rooms/:room/messages', async (c) =>
    c.json({ offset: await hub.publish(`room:${c.req.param('room')}`, await c.req.json()) }),
  )
  app.post('/upload', uploads({ storage: memoryStorage() }))
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  return { hub, base: `127.0.0.1:${server.port}` }
}

const connect = async (base: string): Promise<ProtocolClient> => {
  const client = await openProtocolClient(`ws://${base}/ws`)
  clients.push(client)
  return client
}

const spanNamed = (name: string): ReadableSpan => {
  const found = exporter.getFinishedSpans().filter((span) => span.name === name)
  expect(found, `spans named ${name}`).toHaveLength(1)
  return found[0]!
}

describe('flumenTracing', () => {
  it('traces an HTTP publish from the caller’s traceparent through the publish to its delivery', async () => {
    const { base } = await start()
    const reader = await connect(base)
    await reader.request({ type: 'subscribe', id: 1, topic: 'room:42' })
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const response = await fetch(`http://${base}/rooms/42/messages`, {
      method: 'POST',
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hi' }),
    })
    expect(await response.json()).toEqual({ offset: 1 })
    await expect.poll(() => reader.received.some((m) => m.type === 'message')).toBe(true)
    await expect.poll(() => exporter.getFinishedSpans().some((span) => span.name === 'deliver')).toBe(true)

    const request = spanNamed('POST /rooms/:room/messages')
    const publish = spanNamed('publish')
    const deliver = spanNamed('deliver')
    expect(request.kind).toBe(SpanKind.SERVER)
    expect(request.spanContext().traceId).toBe(traceId)
    expect(request.parentSpanContext?.spanId).toBe('00f067aa0ba902b7')
    expect(request.attributes).toMatchObject({
      'http.route': '/rooms/:room/messages',
      'http.response.status_code': 200,
    })
    expect(publish.parentSpanContext?.spanId).toBe(request.spanContext().spanId)
    expect(publish.attributes).toMatchObject({
      'messaging.system': 'flumen',
      'messaging.destination.name': 'room:42',
      'flumen.offset': 1,
      'flumen.publish.source': 'server',
    })
    expect(deliver.spanContext().traceId).toBe(traceId)
    expect(deliver.parentSpanContext?.spanId).toBe(publish.spanContext().spanId)
    expect(deliver.attributes).toMatchObject({ 'messaging.batch.message_count': 1, 'flumen.connections': 1 })
  })

  it('traces method calls (an error recorded), the WebSocket upgrade and an upload', async () => {
    const { base } = await start()
    const client = await connect(base)
    expect(await client.request({ type: 'call', id: 1, method: 'double', data: 4 })).toMatchObject({
      data: 8,
    })
    expect(await client.request({ type: 'call', id: 2, method: 'refuse' })).toMatchObject({
      code: 'FORBIDDEN',
    })
    const form = new FormData()
    form.append('file', new Blob(['hello']), 'a.txt')
    expect((await fetch(`http://${base}/upload`, { method: 'POST', body: form })).status).toBe(201)

    expect(spanNamed('call double').status.code).toBe(SpanStatusCode.UNSET)
    expect(spanNamed('call refuse').status).toEqual({ code: SpanStatusCode.ERROR, message: 'no' })
    expect(spanNamed('GET /ws').attributes).toMatchObject({ 'http.response.status_code': 101 })
    expect(spanNamed('POST /upload').attributes).toMatchObject({ 'http.response.status_code': 201 })
  })

  it('stops when closed, and refuses what is not a tracer or a hub', async () => {
    const { hub } = await start()
    for (const tracing of tracings.splice(0)) tracing.close()
    await hub.publish('room:1', 'untraced')
    expect(exporter.getFinishedSpans().filter((span) => span.name === 'publish')).toEqual([])
    expect(() => flumenTracing({ tracer: {} as never })).toThrow('flumenTracing: tracer')
    expect(() => flumenTracing({ hub: {} as never })).toThrow('flumenTracing: hub')
  })
})
