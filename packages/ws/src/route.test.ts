import { once } from 'node:events'
import type { Socket } from 'node:net'
import { connect } from 'node:net'
import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, FlumenError, prepareBatch, prepareFrame, serve } from '@flumen/core'
import type { RefusedUpgrade } from '@flumen/testing'
import { leakCheck, refusedUpgrade } from '@flumen/testing'
import fc from 'fast-check'
import type { Hono } from 'hono'
import type { WSEvents } from 'hono/ws'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import type { WebSocketEvents, WebSocketOptions, WebSocketRoute, WsPeer } from './index.js'
import { upgradeWebSocket } from './index.js'

type TestEnv = { Bindings: FlumenBindings; Variables: { user: unknown } }

const servers: FlumenServer[] = []
const clients: WebSocket[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate()
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const echo: WebSocketEvents = {
  onMessage: (event, ws) => {
    ws.send(event.data as string | ArrayBuffer)
  },
}

const start = async (
  events: WebSocketEvents | ((app: Hono<TestEnv>) => void) = echo,
  options: WebSocketOptions = {},
): Promise<{ server: FlumenServer; route: WebSocketRoute; url: string }> => {
  const app = createApp<TestEnv>({ logError: () => {} })
  let route = upgradeWebSocket(() => echo, options)
  if (typeof events === 'function') events(app)
  else route = upgradeWebSocket(() => events, options)
  app.get('/ws', route)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {} })
  servers.push(server)
  return { server, route, url: `ws://127.0.0.1:${server.port}/ws` }
}

const open = async (
  url: string,
  protocols?: string | string[],
  options: WebSocket.ClientOptions = {},
): Promise<WebSocket> => {
  const client = new WebSocket(url, protocols, options)
  clients.push(client)
  await once(client, 'open')
  return client
}

const nextMessage = async (client: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> => {
  const [data, isBinary] = (await once(client, 'message')) as [Buffer, boolean]
  return { data, isBinary }
}

const refused = (url: string, headers: Record<string, string> = {}): Promise<RefusedUpgrade> =>
  refusedUpgrade(url, { headers })

const closeOf = async (client: WebSocket): Promise<number> => {
  const [code] = (await once(client, 'close')) as [number]
  return code
}

describe('upgradeWebSocket', () => {
  it('echoes text and binary messages', async () => {
    const { url } = await start()
    const client = await open(url)
    client.send('héllo')
    const text = await nextMessage(client)
    expect([text.data.toString(), text.isBinary]).toEqual(['héllo', false])
    client.send(Buffer.from([0, 1, 2, 255]))
    const binary = await nextMessage(client)
    expect([[...binary.data], binary.isBinary]).toEqual([[0, 1, 2, 255], true])
  })

  it('sends any text as its UTF-8: ASCII, Latin-1, astral and lone surrogates', async () => {
    const { url } = await start((app) =>
      app.get(
        '/ws',
        upgradeWebSocket(() => ({ onMessage: (event, ws) => ws.send(JSON.parse(event.data as string)) }), {
          rateLimit: false,
        }),
      ),
    )
    const client = await open(url)
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 300 }), async (text) => {
        client.send(JSON.stringify(text))
        const { data } = await nextMessage(client)
        expect(data.equals(Buffer.from(text))).toBe(true)
      }),
      { numRuns: 300 },
    )
    for (const text of ['plain ascii', 'héllo', 'ÿ', '😀 ok', '\ud800', 'x'.repeat(70_000)]) {
      client.send(JSON.stringify(text))
      expect((await nextMessage(client)).data.equals(Buffer.from(text))).toBe(true)
    }
  })

  it('takes handlers written for hono/ws unchanged', async () => {
    const honoEvents: WSEvents<WebSocket> = {
      onMessage: (event, ws) => ws.send(`hono:${String(event.data)}`),
    }
    const { url } = await start(honoEvents)
    const client = await open(url)
    client.send('x')
    expect((await nextMessage(client)).data.toString()).toBe('hono:x')
  })

  it('sits behind middleware: a 401 is a real HTTP response and no upgrade happens', async () => {
    const onOpen = vi.fn()
    const { url } = await start((app) => {
      app.use('/ws', async (c, next) => {
        if (c.req.header('authorization') !== 'Bearer good') {
          throw new FlumenError('UNAUTHORIZED', 'Missing token', {
            headers: { 'WWW-Authenticate': 'Bearer' },
          })
        }
        c.header('X-Trace', 't-42')
        await next()
      })
      app.get(
        '/ws',
        upgradeWebSocket(() => ({ onOpen })),
      )
    })
    const denied = await refused(url)
    expect(denied.status).toBe(401)
    expect(denied.headers['www-authenticate']).toBe('Bearer')
    expect(JSON.parse(denied.body)).toEqual({ error: { code: 'UNAUTHORIZED', message: 'Missing token' } })
    expect(onOpen).not.toHaveBeenCalled()

    const client = new WebSocket(url, { headers: { Authorization: 'Bearer good' } })
    clients.push(client)
    const [response] = (await once(client, 'upgrade')) as [import('node:http').IncomingMessage]
    expect(response.headers['x-trace']).toBe('t-42')
    await vi.waitFor(() => expect(onOpen).toHaveBeenCalledTimes(1))
  })

  it('gives the peer the user that middleware set', async () => {
    let peer: WsPeer | undefined
    const { url } = await start((app) => {
      app.use('/ws', async (c, next) => {
        c.set('user', { id: 'u7' })
        await next()
      })
      app.get(
        '/ws',
        upgradeWebSocket(() => ({
          onOpen: (_e, ws) => {
            peer = ws.peer
          },
        })),
      )
    })
    const client = await open(url)
    await vi.waitFor(() => expect(peer).toBeDefined())
    expect(peer!.user).toEqual({ id: 'u7' })
    expect(peer!.send(prepareFrame('{"hello":1}'))).toBe(true)
    expect((await nextMessage(client)).data.toString()).toBe('{"hello":1}')
  })

  it('routes async handler rejections to onError and keeps the connection', async () => {
    const errors: unknown[] = []
    const { url } = await start({
      onMessage: async (event, ws) => {
        if (event.data === 'fail') throw new Error('handler broke')
        ws.send(`ok:${String(event.data)}`)
      },
      onError: (event) => {
        errors.push((event as unknown as { error: unknown }).error)
      },
    })
    const client = await open(url)
    client.send('fail')
    client.send('again')
    expect((await nextMessage(client)).data.toString()).toBe('ok:again')
    expect(errors).toHaveLength(1)
    expect((errors[0] as Error).message).toBe('handler broke')
  })

  it('delivers messages after an async onOpen finished, in order', async () => {
    const { url } = await start({
      onOpen: async () => {
        await new Promise((resolve) => setTimeout(resolve, 100))
      },
      onMessage: (event, ws) => ws.send(String(event.data)),
    })
    const client = await open(url)
    const received: string[] = []
    client.on('message', (data: Buffer) => received.push(data.toString()))
    for (const n of ['1', '2', '3']) client.send(n)
    await vi.waitFor(() => expect(received).toEqual(['1', '2', '3']))
  })

  it('closes with 1009 when a message is over maxPayload', async () => {
    const { url } = await start(echo, { maxPayload: 1024 })
    const client = await open(url)
    client.send('x'.repeat(1024))
    expect((await nextMessage(client)).data.length).toBe(1024)
    client.send('x'.repeat(1025))
    expect(await closeOf(client)).toBe(1009)
  })

  it('refuses a foreign Origin with 403 before any upgrade', async () => {
    const { url } = await start(echo, { allowedOrigins: ['https://app.example'] })
    const denied = await refused(url, { Origin: 'https://evil.example' })
    expect(denied.status).toBe(403)
    expect(JSON.parse(denied.body).error.code).toBe('FORBIDDEN')
    await open(url, undefined, { headers: { Origin: 'https://app.example' } })
    await open(url) // no Origin: not a browser, allowed
  })

  it('answers a plain GET with 426 and an unknown upgrade path with 404', async () => {
    const { server } = await start()
    const res = await fetch(new URL('/ws', server.url))
    expect(res.status).toBe(426)
    expect(res.headers.get('upgrade')).toBe('websocket')
    expect((await res.json()).error.code).toBe('UPGRADE_REQUIRED')
    const missing = await refused(`ws://127.0.0.1:${server.port}/nope`)
    expect(missing.status).toBe(404)
  })

  it('selects the first offered subprotocol it speaks and never echoes a token protocol', async () => {
    const { url } = await start(echo, { protocols: ['flumen.v1', 'chat'] })
    expect((await open(url, ['chat', 'flumen.v1'])).protocol).toBe('flumen.v1')
    expect((await open(url, ['bearer.secret-token', 'chat'])).protocol).toBe('chat')
    // Offered only a token protocol, the server selects none (a browser then fails the socket).
    const tokenOnly = new WebSocket(url, ['bearer.secret-token'])
    clients.push(tokenOnly)
    const [err] = (await once(tokenOnly, 'error')) as [Error]
    expect(err.message).toBe('Server sent no subprotocol')
  })

  it('negotiates permessage-deflate only when enabled', async () => {
    const plain = await start()
    expect((await open(plain.url, undefined, { perMessageDeflate: true })).extensions).toBe('')
    const compressed = await start(echo, { perMessageDeflate: { threshold: 64 } })
    const client = await open(compressed.url, undefined, { perMessageDeflate: true })
    expect(client.extensions).toContain('permessage-deflate')
    client.send('z'.repeat(5000))
    expect((await nextMessage(client)).data.toString()).toBe('z'.repeat(5000))
  })

  it('sends batches message by message to a compressed socket', async () => {
    let peer: WsPeer | undefined
    const { url } = await start(
      {
        onOpen: (_e, ws) => {
          peer = ws.peer
        },
      },
      { perMessageDeflate: { threshold: 0 } },
    )
    const client = await open(url, undefined, { perMessageDeflate: true })
    await vi.waitFor(() => expect(peer).toBeDefined())
    const received: string[] = []
    client.on('message', (data: Buffer) => received.push(data.toString()))
    expect(peer!.send(prepareBatch([prepareFrame('one'), prepareFrame('two')]))).toBe(true)
    await vi.waitFor(() => expect(received).toEqual(['one', 'two']))
  })

  it('refuses connections over maxConnections with 503', async () => {
    const { url } = await start(echo, { maxConnections: 2 })
    await open(url)
    await open(url)
    expect((await refused(url)).status).toBe(503)
  })

  it('terminates a client that stops answering pings', async () => {
    const { url, route } = await start(echo, { heartbeat: { intervalMs: 100, pongTimeoutMs: 50 } })
    const client = await open(url)
    await vi.waitFor(() => expect(route.peers.size).toBe(1))
    await new Promise((resolve) => setTimeout(resolve, 250)) // answering pings keeps it open
    expect(route.peers.size).toBe(1)
    ;(client as unknown as { _socket: Socket })._socket.pause()
    await vi.waitFor(() => expect(route.peers.size).toBe(0), { timeout: 2_000 })
    expect(route.stats.heartbeatTimeouts).toBe(1)
  })

  it('closes a slow reader with 4008 and keeps its buffer bounded', async () => {
    const maxBufferedBytes = 256 * 1024
    let peer: WsPeer | undefined
    const { url, route } = await start(
      {
        onOpen: (_e, ws) => {
          peer = ws.peer
        },
      },
      { maxBufferedBytes },
    )
    const client = await open(url)
    await vi.waitFor(() => expect(peer).toBeDefined())
    const rawSocket = (client as unknown as { _socket: Socket })._socket
    rawSocket.pause()
    const chunk = prepareFrame('y'.repeat(16 * 1024))
    let sent = 0
    let maxBuffered = 0
    while (peer!.send(chunk) && sent < 100_000) {
      sent++
      maxBuffered = Math.max(maxBuffered, peer!.bufferedAmount)
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    expect(sent).toBeLessThan(100_000)
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedBytes)
    expect(route.stats.slowConsumers).toBe(1)
    const volatile = prepareFrame('v', { volatile: true })
    expect(peer!.send(volatile)).toBe(false)
    rawSocket.resume()
    expect(await closeOf(client)).toBe(4008)
  })

  it('drops volatile frames for a slow reader instead of closing it', async () => {
    let peer: WsPeer | undefined
    const { url, route } = await start(
      {
        onOpen: (_e, ws) => {
          peer = ws.peer
        },
      },
      { maxBufferedBytes: 64 * 1024 },
    )
    const client = await open(url)
    await vi.waitFor(() => expect(peer).toBeDefined())
    ;(client as unknown as { _socket: Socket })._socket.pause()
    const frame = prepareFrame('w'.repeat(16 * 1024), { volatile: true })
    for (let i = 0; i < 2_000; i++) {
      peer!.send(frame)
      if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    expect(route.stats.dropped).toBeGreaterThan(0)
    expect(route.stats.slowConsumers).toBe(0)
    expect(client.readyState).toBe(WebSocket.OPEN)
  })

  it('rate-limits messages: RATE_LIMITED, then 1008 when it goes on', async () => {
    const { url, route } = await start(echo, { rateLimit: { messagesPerSecond: 5, burst: 5 } })
    const client = await open(url)
    const received: string[] = []
    client.on('message', (data: Buffer) => received.push(data.toString()))
    for (let i = 0; i < 8; i++) client.send(`m${i}`)
    const refusal = JSON.stringify({ type: 'error', code: 'RATE_LIMITED', message: 'Too many messages' })
    // Every dropped message is answered, not only the first.
    await vi.waitFor(() => expect(received.filter((m) => m === refusal)).toHaveLength(3))
    expect(received.filter((m) => m.startsWith('m'))).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
    expect(client.readyState).toBe(WebSocket.OPEN)
    const closed = closeOf(client)
    for (let i = 0; i < 20; i++) client.send('flood')
    expect(await closed).toBe(1008)
    expect(route.stats.rateLimited).toBeGreaterThan(5)
  })

  it('drains on server close: every socket gets 1001', async () => {
    const { url, server } = await start()
    const first = await open(url)
    const second = await open(url)
    const codes = Promise.all([closeOf(first), closeOf(second)])
    const started = Date.now()
    await server.close({ timeoutMs: 2_000 })
    expect(await codes).toEqual([1001, 1001])
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('rejects bad options up front', () => {
    expect(() => upgradeWebSocket(() => echo, { maxPayload: 0 })).toThrow(/maxPayload/)
    expect(() => upgradeWebSocket(() => echo, { allowedOrigins: ['not a url'] })).toThrow(/allowedOrigins/)
    expect(() =>
      upgradeWebSocket(() => echo, { heartbeat: { intervalMs: 100, pongTimeoutMs: 100 } }),
    ).toThrow(/pongTimeoutMs/)
    expect(() => upgradeWebSocket(() => echo, { rateLimit: { messagesPerSecond: -1 } })).toThrow(
      /messagesPerSecond/,
    )
    expect(() => upgradeWebSocket(() => echo, { protocols: ['bad protocol'] })).toThrow(/protocols/)
  })

  it('gives a connection slot back when a later middleware refuses the upgrade or ws refuses the handshake', async () => {
    let refuse = true
    const { url, route } = await start(
      (app) => {
        app.use('/ws', async (c, next) => {
          await next()
          if (refuse) c.res = c.json({ error: { code: 'FORBIDDEN', message: 'no' } }, 403)
        })
      },
      { maxConnections: 1 },
    )
    for (let i = 0; i < 3; i++) expect((await refused(url)).status).toBe(403)
    refuse = false
    // A handshake ws itself refuses (no Sec-WebSocket-Key) never opens either.
    const raw = connect(Number(new URL(url).port), '127.0.0.1')
    sockets.push(raw)
    raw.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    raw.resume()
    await once(raw, 'close')
    const client = await open(url)
    expect(route.stats.connections).toBe(1)
    client.close()
  })

  it('opens and closes 1,000 connections without leaking listeners or timers', async () => {
    const { url, route, server } = await start(echo, {
      heartbeat: { intervalMs: 1_000, pongTimeoutMs: 500 },
      maxConnectionsPerIp: 1_000,
    })
    const check = await leakCheck({ emitters: [server.node] })
    const many: WebSocket[] = []
    for (let i = 0; i < 1_000; i += 100) {
      many.push(...(await Promise.all(Array.from({ length: 100 }, () => open(url)))))
    }
    expect(route.stats.connections).toBe(1_000)
    await Promise.all(
      many.map((client) => {
        const closed = once(client, 'close')
        client.close()
        return closed
      }),
    )
    await vi.waitFor(() => expect(route.peers.size).toBe(0))
    expect(route.stats.connections).toBe(0)
    clients.splice(0)
    await check.assertClean()
  })

  it('leaves nothing behind after hostile clients: oversized messages, floods, garbage frames, slow readers', async () => {
    const { url, route, server } = await start(echo, {
      maxPayload: 1024,
      rateLimit: { messagesPerSecond: 10, burst: 10 },
      maxBufferedBytes: 64 * 1024,
    })
    const check = await leakCheck({ emitters: [server.node] })
    for (let round = 0; round < 10; round++) {
      const big = await open(url)
      const bigClosed = once(big, 'close')
      big.send('x'.repeat(4096)) // over maxPayload: 1009
      const flood = await open(url)
      const floodClosed = once(flood, 'close')
      for (let i = 0; i < 50; i++) flood.send('spam') // past burst: 1008
      const raw = connect(Number(new URL(url).port), '127.0.0.1')
      raw.on('error', () => {})
      raw.resume()
      raw.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n')
      raw.write('Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
      raw.write(Buffer.from([0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])) // a 2^64 length frame
      await Promise.all([bigClosed, floodClosed, once(raw, 'close')])
    }
    await vi.waitFor(() => expect(route.peers.size).toBe(0))
    clients.splice(0)
    await check.assertClean()
  })
})

describe('raw socket hygiene', () => {
  it('survives a garbage handshake on a WebSocket route', async () => {
    const { server, url } = await start()
    const socket = connect(server.port, '127.0.0.1')
    sockets.push(socket)
    socket.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: nope\r\n\r\n',
    )
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    await once(socket, 'close')
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1.1 400 /)
    await open(url) // still serving
  })
})
