import { once } from 'node:events'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createHub, memoryEngine, recentMessages } from './index.js'

const servers: FlumenServer[] = []
const sockets: WebSocket[] = []
const streams: AbortController[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  for (const stream of streams.splice(0)) stream.abort()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

describe('hub.inspect and hub.disconnect', () => {
  it('lists connections of both transports with their topics, and closes one by id', async () => {
    const hub = createHub<{ id: string }>()
    const app = createApp()
    app.use('*', async (c, next) => {
      c.set('user' as never, { id: c.req.query('user') ?? 'anon' } as never)
      await next()
    })
    app.get('/ws', hub.websocket())
    app.get('/sse', hub.sse())
    const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
    servers.push(server)
    const before = Date.now()
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws?user=ann`, 'flumen.v1')
    sockets.push(socket)
    await once(socket, 'open')
    socket.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'room:1' }))
    await once(socket, 'message')
    const stream = new AbortController()
    streams.push(stream)
    await fetch(`http://127.0.0.1:${server.port}/sse?topic=room:1&topic=news&user=bob`, {
      signal: stream.signal,
    })
    await expect.poll(() => hub.inspect().connections.length).toBe(2)

    const { connections, topics } = hub.inspect()
    const ws = connections.find((connection) => connection.transport === 'ws')!
    expect(ws).toMatchObject({ user: { id: 'ann' }, topics: ['room:1'], bufferedAmount: 0 })
    expect(ws.connectedAt).toBeGreaterThanOrEqual(before)
    expect(connections.find((connection) => connection.transport === 'sse')).toMatchObject({
      user: { id: 'bob' },
      topics: ['room:1', 'news'],
    })
    expect(topics).toEqual(
      expect.arrayContaining([
        { name: 'room:1', subscribers: 2, recovering: 0, presence: 2 },
        { name: 'news', subscribers: 1, recovering: 0, presence: 1 },
      ]),
    )

    expect(hub.disconnect('no-such-connection')).toBe(false)
    const closed = once(socket, 'close')
    expect(hub.disconnect(ws.id)).toBe(true)
    const [code, reason] = (await closed) as [number, Buffer]
    expect([code, reason.toString()]).toEqual([1008, 'Disconnected by the server'])
    await expect
      .poll(() => hub.inspect().connections.map((connection) => connection.transport))
      .toEqual(['sse'])
  })
})

describe('recentMessages', () => {
  it('reads the newest messages still in the window, fewer when older ones left it', async () => {
    const engine = memoryEngine({ history: { size: 5 } })
    for (let i = 1; i <= 8; i++) await engine.publish('t', JSON.stringify(i))
    const recent = await recentMessages(engine, 't', 3)
    expect(recent.messages.map((message) => message.data)).toEqual(['6', '7', '8'])
    expect(recent.position.offset).toBe(8)
    // Asked for more than the window keeps: the newest that are still there (by halving the span).
    expect((await recentMessages(engine, 't', 100)).messages.map((message) => message.data)).toEqual([
      '5',
      '6',
      '7',
      '8',
    ])
    expect((await recentMessages(engine, 'empty', 10)).messages).toEqual([])
    await engine.close()
  })
})
