import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import type { ReceivedEvent, TestSseClient } from '@flumen/testing'
import { openSse } from '@flumen/testing'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import type { Hub, HubOptions } from './index.js'
import { createHub } from './index.js'

type Env = { Bindings: FlumenBindings; Variables: { user: unknown } }

const servers: FlumenServer[] = []
const clients: TestSseClient[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (options: HubOptions = {}): Promise<{ hub: Hub; server: FlumenServer }> => {
  const hub = createHub({ logError: () => {}, presence: false, ...options })
  const app = createApp<Env>()
  app.use('*', async (c, next) => {
    const name = c.req.query('user')
    if (name) c.set('user', { id: name })
    await next()
  })
  app.get('/sse', hub.sse({ heartbeatMs: false }))
  app.get('/ws', hub.websocket())
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  return { hub, server }
}

const open = async (url: string, headers: Record<string, string> = {}): Promise<TestSseClient> => {
  const client = await openSse(url, headers)
  clients.push(client)
  return client
}

/** Hub messages only (not the `position` event a stream starts with). */
const isMessage = (event: ReceivedEvent): boolean => event.event === 'message'

const payload = (event: ReceivedEvent): { type: string; topic?: string; data?: unknown; offset?: number } =>
  JSON.parse(event.data) as { type: string; topic?: string; data?: unknown; offset?: number }

describe('hub over SSE', () => {
  it('streams the same hub messages as WebSocket, from server code and from WS clients', async () => {
    const { hub, server } = await start()
    const stream = await open(`${server.url}sse?topic=room:1&topic=room:2`)
    expect(stream.response.statusCode).toBe(200)
    await hub.publish('room:1', { text: 'from server' })
    const first = await stream.next(isMessage)
    expect(payload(first)).toMatchObject({
      type: 'message',
      topic: 'room:1',
      data: { text: 'from server' },
      offset: 1,
    })
    expect(first.id).toMatch(/room%3A1~[\w-]+~1/)
    expect(first.id).toMatch(/room%3A2~[\w-]+~0/)

    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, 'flumen.v1')
    sockets.push(ws)
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(JSON.stringify({ type: 'publish', topic: 'room:2', data: 'from ws' }))
    expect(payload(await stream.next(isMessage))).toMatchObject({ topic: 'room:2', data: 'from ws' })
  })

  it('writes a burst of one turn with an id per event, single- and multi-topic streams alike', async () => {
    const { hub, server } = await start()
    const single = await open(`${server.url}sse?topic=burst`)
    const multi = await open(`${server.url}sse?topic=burst&topic=other`)
    await Promise.all([1, 2, 3, 4].map((i) => hub.publish('burst', i)))
    let lastId = ''
    for (const stream of [single, multi]) {
      const events = [
        await stream.next(isMessage),
        await stream.next(isMessage),
        await stream.next(isMessage),
        await stream.next(isMessage),
      ]
      expect(events.map((event) => payload(event).data)).toEqual([1, 2, 3, 4])
      for (const [i, event] of events.entries())
        expect(event.id).toMatch(new RegExp(`burst~[\\w-]+~${i + 1}`))
      lastId ||= events[3]!.id!
    }
    // The last id of the burst resumes right after it.
    await hub.publish('burst', 5)
    const resumed = await open(`${server.url}sse?topic=burst`, { 'last-event-id': lastId })
    expect(payload(await resumed.next(isMessage)).data).toBe(5)
  })

  it('streams volatile messages without an id, so Last-Event-ID stays on the stored ones', async () => {
    const { hub, server } = await start()
    const stream = await open(`${server.url}sse?topic=room:1`)
    await hub.publish('room:1', 'stored')
    const stored = await stream.next(isMessage)
    await hub.publish('room:1', { typing: 'alice' }, { volatile: true })
    const volatile = await stream.next(isMessage)
    expect(JSON.parse(volatile.data)).toEqual({
      type: 'message',
      topic: 'room:1',
      data: { typing: 'alice' },
      volatile: true,
    })
    expect(volatile.id).toBeUndefined()
    stream.close()
    // Back from the stored message's id: nothing missed, the volatile one is not replayed.
    const again = await open(`${server.url}sse?topic=room:1`, { 'last-event-id': stored.id! })
    await hub.publish('room:1', 'after')
    expect(payload(await again.next(isMessage))).toMatchObject({ data: 'after', offset: 2 })
  })

  it('refuses a forbidden or malformed topic with an HTTP error before streaming', async () => {
    const { server, hub } = await start({ authorize: ({ topic }) => topic !== 'secret' })
    const forbidden = await fetch(new URL('/sse?topic=ok&topic=secret', server.url))
    expect(forbidden.status).toBe(403)
    expect((await forbidden.json()).error.code).toBe('FORBIDDEN')
    expect((await fetch(new URL('/sse', server.url))).status).toBe(400)
    expect((await fetch(new URL(`/sse?topic=${'x'.repeat(300)}`, server.url))).status).toBe(400)
    await vi.waitFor(() => expect(hub.stats.peers).toBe(0))
    expect(hub.stats.topics).toBe(0)
  })

  it('resumes with Last-Event-ID: 5,000 events across forced reconnects, none lost or repeated', async () => {
    const { hub, server } = await start({ history: { size: 10_000 } })
    const total = 5_000
    const received: number[] = []
    let lastEventId: string | undefined
    let published = 0
    let reconnects = 0
    let publisher: Promise<void> | undefined
    while (received.length < total) {
      const stream = await open(
        `${server.url}sse?topic=feed`,
        lastEventId ? { 'last-event-id': lastEventId } : {},
      )
      publisher ??= (async () => {
        while (published < total) {
          for (let i = 0; i < 25 && published < total; i++) await hub.publish('feed', ++published)
          await new Promise((resolve) => setImmediate(resolve))
        }
      })()
      const budget = 300 + reconnects * 137
      for (let n = 0; n < budget && received.length < total; n++) {
        let event: ReceivedEvent
        try {
          event = await stream.next((e) => e.event !== 'position', 5_000)
        } catch {
          break
        }
        if (event.event === 'reset') throw new Error('unexpected reset')
        received.push(payload(event).data as number)
        lastEventId = event.id
      }
      stream.close()
      reconnects++
    }
    await publisher
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    expect(reconnects).toBeGreaterThan(5)
  }, 60_000)

  it('sends event: reset when the gap left the history window', async () => {
    const { hub, server } = await start({ history: { size: 5 } })
    const stream = await open(`${server.url}sse?topic=small`)
    await hub.publish('small', 1)
    const seen = await stream.next(isMessage)
    stream.close()
    for (let i = 0; i < 20; i++) await hub.publish('small', i)
    const again = await open(`${server.url}sse?topic=small`, { 'last-event-id': seen.id! })
    const reset = await again.next()
    expect(reset.event).toBe('reset')
    expect(JSON.parse(reset.data)).toMatchObject({ topic: 'small', offset: 21 })
    await hub.publish('small', 'live')
    expect(payload(await again.next(isMessage)).data).toBe('live')
  })

  it('starts with event: position, so the eventsource package resumes what was published while it was away', async () => {
    const hub = createHub({ logError: () => {}, presence: false })
    const sseRoute = hub.sse({ heartbeatMs: false, retryMs: 50 })
    const app = createApp<Env>()
    app.get('/sse', sseRoute)
    const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
    servers.push(server)
    const { EventSource } = await import('eventsource')
    const source = new EventSource(`${server.url}sse?topic=away`)
    const received: unknown[] = []
    const positions: string[] = []
    source.addEventListener('position', (event) => positions.push(event.data))
    source.addEventListener('message', (event) => received.push(JSON.parse(event.data).data))
    try {
      await vi.waitFor(() => expect(positions).toHaveLength(1))
      expect(JSON.parse(positions[0]!)).toEqual({ away: { epoch: expect.any(String), offset: 0 } })
      // The server ends the stream; what is published before the client is back must reach it.
      for (const peer of sseRoute.peers) peer.close()
      await vi.waitFor(() => expect(sseRoute.peers.size).toBe(0))
      for (const text of ['one', 'two', 'three']) await hub.publish('away', text)
      await vi.waitFor(() => expect(received).toEqual(['one', 'two', 'three']))
    } finally {
      source.close()
    }
  })

  it('sends the eventsource package whole messages on a topic that also has delta subscribers', async () => {
    const hub = createHub({ logError: () => {}, presence: false })
    const sseRoute = hub.sse({ heartbeatMs: false })
    const app = createApp<Env>()
    app.get('/sse', sseRoute)
    const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
    servers.push(server)
    const { EventSource } = await import('eventsource')
    const plain = new EventSource(`${server.url}sse?topic=board`)
    const withDeltas = new EventSource(`${server.url}sse?topic=board&delta=fossil`)
    const whole: unknown[] = []
    const deltas: unknown[] = []
    let subscribed = 0 // event: position comes once every topic of a stream is subscribed
    for (const source of [plain, withDeltas]) source.addEventListener('position', () => subscribed++)
    plain.addEventListener('message', (event) => whole.push(JSON.parse(event.data)))
    withDeltas.addEventListener('message', (event) => deltas.push(JSON.parse(event.data)))
    const board = (version: number): unknown => ({ version, rows: Array.from({ length: 50 }, (_, i) => i) })
    try {
      await vi.waitFor(() => expect(subscribed).toBe(2))
      for (let version = 1; version <= 3; version++) await hub.publish('board', board(version))
      await vi.waitFor(() => expect(whole).toHaveLength(3))
      await vi.waitFor(() => expect(deltas).toHaveLength(3))
      expect(whole.map((message) => (message as { data: unknown }).data)).toEqual([
        board(1),
        board(2),
        board(3),
      ])
      expect(
        deltas.slice(1).every((message) => typeof (message as { delta?: unknown }).delta === 'string'),
      ).toBe(true)
    } finally {
      plain.close()
      withDeltas.close()
    }
  })

  it('authorizes every topic of a stream before subscribing any: a refused stream is never seen in presence', async () => {
    const { server } = await start({
      presence: true,
      authorize: ({ topic }) => topic !== 'room:secret',
    })
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?user=watcher`, 'flumen.v1')
    sockets.push(ws)
    const seen: Record<string, unknown>[] = []
    ws.on('message', (data: Buffer) => seen.push(JSON.parse(data.toString())))
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'room:open' }))
    await vi.waitFor(() => expect(seen.some((m) => Array.isArray(m.members))).toBe(true))
    const refused = await open(`${server.url}sse?topic=room:open&topic=room:secret&user=intruder`)
    expect(refused.response.statusCode).toBe(403)
    await refused.closed
    const allowed = await open(`${server.url}sse?topic=room:open&user=guest`)
    expect(allowed.response.statusCode).toBe(200)
    await vi.waitFor(() => expect(seen.some((m) => Array.isArray(m.join))).toBe(true))
    // Only the guest came: the intruder never joined room:open, so it never left it either.
    expect(seen.filter((m) => m.type === 'presence' && (m.join || m.leave))).toEqual([
      { type: 'presence', topic: 'room:open', join: [{ id: 'guest' }] },
    ])
  })
})
