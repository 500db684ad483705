import type { Socket } from 'node:net'
import { connect } from 'node:net'
import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, FlumenError, prepareFrame, serve } from '@flumen/core'
import type { TestSseClient } from '@flumen/testing'
import { leakCheck, openSse } from '@flumen/testing'
import type { Hono } from 'hono'
import { compress } from 'hono/compress'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SseOptions, SsePeer, SseRoute } from './index.js'
import { decodeCursor, encodeCursor, encodeEvent, sse } from './index.js'

type Env = { Bindings: FlumenBindings; Variables: { user: unknown } }

const servers: FlumenServer[] = []
const clients: TestSseClient[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (
  setup: (
    app: Hono<Env>,
    route: (handler: Parameters<typeof sse>[0], options?: SseOptions) => SseRoute,
  ) => void,
): Promise<FlumenServer> => {
  const app = createApp<Env>({ logError: () => {} })
  setup(app, (handler, options) => sse(handler as Parameters<typeof sse>[0], options))
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {} })
  servers.push(server)
  return server
}

const open = async (url: string, headers: Record<string, string> = {}): Promise<TestSseClient> => {
  const client = await openSse(url, headers)
  clients.push(client)
  return client
}

describe('sse()', () => {
  it('streams events in order with retry first, multi-line data and proxy-safe headers', async () => {
    const server = await start((app, route) => {
      app.get(
        '/events',
        route((stream) => {
          stream.sendEvent({ data: 'first' })
          stream.sendEvent({ event: 'note', data: 'line one\nline two', id: '7' })
          setTimeout(() => stream.sendEvent({ data: 'later' }), 20)
        }),
      )
    })
    const client = await open(`${server.url}events`)
    expect(client.response.statusCode).toBe(200)
    expect(client.response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(client.response.headers['cache-control']).toBe('no-cache, no-transform')
    expect(client.response.headers['x-accel-buffering']).toBe('no')
    expect((await client.next()).data).toBe('first')
    expect(client.retry).toBe(2000)
    expect(await client.next()).toEqual({ event: 'note', data: 'line one\nline two', id: '7' })
    expect((await client.next()).data).toBe('later')
  })

  it('sends heartbeat comments', async () => {
    const server = await start((app, route) =>
      app.get(
        '/events',
        route(() => {}, { heartbeatMs: 30 }),
      ),
    )
    const client = await open(`${server.url}events`)
    await vi.waitFor(() => expect(client.comments).toContain('ping'))
  })

  it('answers a failing handler or middleware with a plain HTTP error, never a stream', async () => {
    const server = await start((app, route) => {
      app.use('/private', async () => {
        throw new FlumenError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': 'Bearer' } })
      })
      app.get(
        '/private',
        route(() => {}),
      )
      app.get(
        '/forbidden',
        route(() => {
          throw new FlumenError('FORBIDDEN', 'Not your topic')
        }),
      )
    })
    const denied = await fetch(new URL('/private', server.url))
    expect(denied.status).toBe(401)
    expect(denied.headers.get('content-type')).toMatch(/json/)
    expect(denied.headers.get('www-authenticate')).toBe('Bearer')
    const forbidden = await fetch(new URL('/forbidden', server.url))
    expect(forbidden.status).toBe(403)
    expect(await forbidden.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'Not your topic' } })
  })

  it('keeps middleware headers and works through compression middleware unbuffered', async () => {
    const server = await start((app, route) => {
      app.use('*', compress())
      app.use('*', async (c, next) => {
        c.header('X-Trace', 'abc')
        await next()
      })
      app.get(
        '/events',
        route((stream) => {
          stream.sendEvent({ data: 'now' })
        }),
      )
    })
    const client = await open(`${server.url}events`, { 'accept-encoding': 'gzip' })
    expect(client.response.headers['x-trace']).toBe('abc')
    expect(client.response.headers['content-encoding']).toBeUndefined()
    expect((await client.next(() => true, 1_000)).data).toBe('now')
  })

  it('cleans up once on disconnect: no stream, listener or timer left', async () => {
    let route: SseRoute | undefined
    const closed = vi.fn()
    const server = await start((app, make) => {
      route = make((stream) => stream.onClose(closed), { heartbeatMs: 50 })
      app.get('/events', route)
    })
    const check = await leakCheck({ emitters: [server.node] })
    const streams = await Promise.all(Array.from({ length: 20 }, () => open(`${server.url}events`)))
    await vi.waitFor(() => expect(route!.stats.connections).toBe(20))
    for (const client of streams) client.close()
    await vi.waitFor(() => expect(route!.stats.connections).toBe(0))
    expect(closed).toHaveBeenCalledTimes(20)
    await check.assertClean()
  })

  it('cuts off a stalled reader with its buffer bounded', async () => {
    let peer: SsePeer | undefined
    let route: SseRoute | undefined
    const server = await start((app, make) => {
      route = make(
        (stream) => {
          peer = stream
        },
        { maxBufferedBytes: 256 * 1024, heartbeatMs: false },
      )
      app.get('/events', route)
    })
    const check = await leakCheck({ emitters: [server.node] })
    const socket = connect(server.port, '127.0.0.1')
    sockets.push(socket)
    socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n')
    await vi.waitFor(() => expect(peer).toBeDefined())
    socket.pause() // never reads again
    const frame = prepareFrame('z'.repeat(16 * 1024))
    let sent = 0
    let maxBuffered = 0
    while (peer!.send(frame) && sent < 100_000) {
      sent++
      maxBuffered = Math.max(maxBuffered, peer!.bufferedAmount)
      if (sent % 32 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    expect(sent).toBeLessThan(100_000)
    expect(maxBuffered).toBeLessThanOrEqual(256 * 1024)
    expect(route!.stats.slowConsumers).toBe(1)
    await vi.waitFor(() => expect(route!.stats.connections).toBe(0))
    socket.destroy()
    await check.assertClean()
  })

  it('ends every stream when the server drains', async () => {
    const server = await start((app, route) =>
      app.get(
        '/events',
        route(() => {}),
      ),
    )
    const a = await open(`${server.url}events`)
    const b = await open(`${server.url}events`)
    const started = Date.now()
    await server.close({ timeoutMs: 2_000 })
    await Promise.all([a.closed, b.closed])
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('refuses streams over maxConnections with 503 and bad options up front', async () => {
    const server = await start((app, route) =>
      app.get(
        '/events',
        route(() => {}, { maxConnections: 1 }),
      ),
    )
    await open(`${server.url}events`)
    expect((await fetch(new URL('/events', server.url))).status).toBe(503)
    expect(() => sse(() => {}, { retryMs: 0 })).toThrow(/retryMs/)
    expect(() => sse('nope' as never)).toThrow(/handler/)
  })
})

describe('cursor and event encoding', () => {
  it('round-trips topic positions, including awkward topic names', () => {
    const positions = new Map([
      ['room:1', { epoch: 'e1', offset: 5 }],
      ['a,b~c d', { epoch: 'e2', offset: 0 }],
    ])
    expect(decodeCursor(encodeCursor(positions))).toEqual(positions)
    expect(decodeCursor('garbage,%E0%A4%A~x~1,t~e~-1,t~e~x')).toEqual(new Map())
    expect(decodeCursor(undefined)).toEqual(new Map())
  })

  it('keeps line breaks out of event names and ids', () => {
    expect(encodeEvent({ event: 'a\nb', id: '1\r2', data: 'x' })).toBe('event: ab\nid: 12\ndata: x\n\n')
  })
})
