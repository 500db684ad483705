import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, FlumenError, serve } from '@flumen/core'
import { leakCheck } from '@flumen/testing'
import type { WebSocketOptions } from '@flumen/ws'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import type { Engine, Hub, HubOptions, StandardSchemaV1 } from './index.js'
import { createHub, memoryEngine } from './index.js'

type Env = { Bindings: FlumenBindings; Variables: { user: unknown } }
type Json = Record<string, unknown>

const servers: FlumenServer[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

interface TestClient {
  socket: WebSocket
  received: Json[]
  send(message: Json | string): void
  /** The first received message (from the start) matching `match` that was not taken yet. */
  next(match?: (message: Json) => boolean, timeoutMs?: number): Promise<Json>
  request(message: Json): Promise<Json>
}

let nextId = 1

const start = async (
  options: HubOptions = {},
  wsOptions: WebSocketOptions = {},
): Promise<{ hub: Hub; server: FlumenServer; connect(user?: string): Promise<TestClient> }> => {
  const hub = createHub({ logError: () => {}, ...options })
  const app = createApp<Env>()
  app.use('/ws', async (c, next) => {
    const name = c.req.query('user')
    if (name) c.set('user', { id: name, name, role: 'secret-role' })
    await next()
  })
  app.get('/ws', hub.websocket(wsOptions))
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  const connect = async (user?: string): Promise<TestClient> => {
    const socket = new WebSocket(
      `ws://127.0.0.1:${server.port}/ws${user ? `?user=${user}` : ''}`,
      'flumen.v1',
    )
    sockets.push(socket)
    const received: Json[] = []
    const taken = new Set<Json>()
    const waiters: (() => void)[] = []
    socket.on('message', (data: Buffer) => {
      received.push(JSON.parse(data.toString()) as Json)
      for (const waiter of waiters.splice(0)) waiter()
    })
    await once(socket, 'open')
    const client: TestClient = {
      socket,
      received,
      send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
      next: (match = () => true, timeoutMs = 5_000) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no matching message; got ${JSON.stringify(received)}`)),
            timeoutMs,
          )
          const look = (): void => {
            const found = received.find((m) => !taken.has(m) && match(m))
            if (found) {
              taken.add(found)
              clearTimeout(timer)
              resolve(found)
            } else waiters.push(look)
          }
          look()
        }),
      request: (message) => {
        const id = nextId++
        client.send({ ...message, id })
        return client.next((m) => m.id === id && m.type !== 'message')
      },
    }
    return client
  }
  return { hub, server, connect }
}

const isMessage = (topic: string) => (m: Json) => m.type === 'message' && m.topic === topic

describe('hub over WebSocket', () => {
  it('lets two clients in a room see each other, not themselves unless they ask', async () => {
    const { connect } = await start()
    const alice = await connect('alice')
    const bob = await connect('bob')
    expect(alice.socket.protocol).toBe('flumen.v1')
    expect(await alice.request({ type: 'subscribe', topic: 'room:1' })).toMatchObject({
      type: 'ack',
      recovered: true,
    })
    await bob.request({ type: 'subscribe', topic: 'room:1' })

    const ack = await alice.request({ type: 'publish', topic: 'room:1', data: { text: 'hi bob' } })
    expect(ack).toMatchObject({ type: 'ack', offset: 1 })
    expect(await bob.next(isMessage('room:1'))).toMatchObject({ data: { text: 'hi bob' }, offset: 1 })
    await bob.request({ type: 'publish', topic: 'room:1', data: 'hi alice' })
    expect(await alice.next(isMessage('room:1'))).toMatchObject({ data: 'hi alice', offset: 2 })
    await alice.request({ type: 'publish', topic: 'room:1', data: 'echo me', echo: true })
    expect((await alice.next(isMessage('room:1'))).data).toBe('echo me')
    // Alice never received her own first message.
    expect(alice.received.filter(isMessage('room:1')).map((m) => m.data)).toEqual(['hi alice', 'echo me'])
  })

  it('stores a publish sent again with its key once per user (a retry), and refuses a malformed key', async () => {
    const { connect } = await start()
    const alice = await connect('alice')
    const aliceAgain = await connect('alice') // her reconnected tab
    const bob = await connect('bob')
    const reader = await connect('reader')
    await reader.request({ type: 'subscribe', topic: 'keys' })
    const first = await alice.request({ type: 'publish', topic: 'keys', data: 'one', key: 'k-1' })
    const retry = await aliceAgain.request({ type: 'publish', topic: 'keys', data: 'one', key: 'k-1' })
    const bobs = await bob.request({ type: 'publish', topic: 'keys', data: 'two', key: 'k-1' })
    expect([first.offset, retry.offset, bobs.offset]).toEqual([1, 1, 2])
    await reader.next((m) => isMessage('keys')(m) && m.offset === 2)
    expect(reader.received.filter(isMessage('keys')).map((m) => m.data)).toEqual(['one', 'two'])
    for (const key of ['', 'x'.repeat(65), 'with space', 7])
      expect(await alice.request({ type: 'publish', topic: 'keys', data: 'bad', key })).toMatchObject({
        type: 'error',
        code: 'BAD_REQUEST',
      })
  })

  it('closes with the server that serves its routes, without being passed in plugins', async () => {
    const engine = memoryEngine()
    const hub = createHub({ engine, logError: () => {} })
    const app = createApp().get('/ws', hub.websocket())
    const server = await serve(app, { port: 0, hostname: '127.0.0.1' })
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, 'flumen.v1')
    sockets.push(socket)
    await once(socket, 'open')
    const closedAt = once(socket, 'close')
    await server.close({ timeoutMs: 500 })
    expect((await closedAt)[0]).toBe(1001)
    await expect(hub.publish('after', 1)).rejects.toThrow(/closed/)
  })

  it('delivers bursts in order without giving senders their own messages', async () => {
    const { connect } = await start()
    const alice = await connect('alice')
    const bob = await connect('bob')
    await alice.request({ type: 'subscribe', topic: 'burst' })
    await bob.request({ type: 'subscribe', topic: 'burst' })
    for (let i = 0; i < 20; i++) {
      alice.send({ type: 'publish', topic: 'burst', data: `a${i}` })
      bob.send({ type: 'publish', topic: 'burst', data: `b${i}` })
    }
    await vi.waitFor(() => {
      expect(alice.received.filter(isMessage('burst'))).toHaveLength(20)
      expect(bob.received.filter(isMessage('burst'))).toHaveLength(20)
    })
    expect(alice.received.filter(isMessage('burst')).map((m) => m.data)).toEqual(
      Array.from({ length: 20 }, (_, i) => `b${i}`),
    )
    const offsets = bob.received.filter(isMessage('burst')).map((m) => m.offset as number)
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y))
  })

  it('writes the messages of one turn together, in order, each peer skipping its own', async () => {
    const { connect, hub } = await start()
    hub.method('whoami', (_data, { peer }) => peer.id)
    const a = await connect('a')
    const b = await connect('b')
    const aId = (await a.request({ type: 'call', method: 'whoami' })).data as string
    await a.request({ type: 'subscribe', topic: 'turn' })
    await b.request({ type: 'subscribe', topic: 'turn' })
    // Published without yielding: all five go out after this turn, in one batch per peer.
    const offsets = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => hub.publish('turn', i, i % 2 === 1 ? { except: aId } : {})),
    )
    expect(offsets).toEqual([1, 2, 3, 4, 5])
    await vi.waitFor(() => expect(b.received.filter(isMessage('turn'))).toHaveLength(5))
    expect(b.received.filter(isMessage('turn')).map((m) => m.data)).toEqual([0, 1, 2, 3, 4])
    await vi.waitFor(() => expect(a.received.filter(isMessage('turn'))).toHaveLength(3))
    expect(a.received.filter(isMessage('turn')).map((m) => [m.data, m.offset])).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ])
    expect(hub.stats.delivered).toBeGreaterThanOrEqual(8)
    // Presence that follows messages in the same turn comes after them.
    void hub.publish('turn', 'before-join')
    const c = await connect('c')
    await c.request({ type: 'subscribe', topic: 'turn' })
    const join = await b.next(
      (m) => m.type === 'presence' && Array.isArray(m.join) && (m.join as Json[]).some((u) => u.id === 'c'),
    )
    expect(b.received.indexOf(join)).toBeGreaterThan(
      b.received.findIndex((m) => m.type === 'message' && m.data === 'before-join'),
    )
  })

  it('acks publishes with increasing offsets and stamps messages with epoch and offset', async () => {
    const { connect } = await start()
    const client = await connect('a')
    const offsets: number[] = []
    for (let i = 0; i < 5; i++)
      offsets.push((await client.request({ type: 'publish', topic: 't', data: i })).offset as number)
    expect(offsets).toEqual([1, 2, 3, 4, 5])
    const sub = await client.request({ type: 'subscribe', topic: 't' })
    expect(sub).toMatchObject({ recovered: true, offset: 5 })
    expect(typeof sub.epoch).toBe('string')
  })

  it('reaches WS peers from server code, with except', async () => {
    const { connect, hub } = await start()
    const a = await connect('a')
    const b = await connect('b')
    await a.request({ type: 'subscribe', topic: 'news' })
    await b.request({ type: 'subscribe', topic: 'news' })
    expect(await hub.publish('news', { headline: 'up' })).toBe(1)
    expect((await a.next(isMessage('news'))).data).toEqual({ headline: 'up' })
    expect((await b.next(isMessage('news'))).data).toEqual({ headline: 'up' })
    expect(hub.stats.peers).toBe(2)
    await expect(hub.publish('', 1)).rejects.toThrow(FlumenError)
    await expect(hub.publish('news', undefined)).rejects.toThrow(/JSON/)
  })

  it('shows presence: joins, a user with two tabs once, leaves, and a client that vanished', async () => {
    const { connect, hub } = await start({}, { heartbeat: { intervalMs: 100, pongTimeoutMs: 50 } })
    const alice = await connect('alice')
    await alice.request({ type: 'subscribe', topic: 'room:p' })
    expect(await alice.next((m) => m.type === 'presence' && Array.isArray(m.members))).toMatchObject({
      members: [{ id: 'alice', name: 'alice' }],
    })
    const bob = await connect('bob')
    await bob.request({ type: 'subscribe', topic: 'room:p' })
    const joinedBob = (m: Json): boolean =>
      m.type === 'presence' &&
      Array.isArray(m.join) &&
      (m.join as Json[]).some((member) => member.id === 'bob')
    expect(await alice.next(joinedBob)).toMatchObject({ join: [{ id: 'bob', name: 'bob' }] })
    const bobMembers = await bob.next((m) => m.type === 'presence' && Array.isArray(m.members))
    expect((bobMembers.members as Json[]).map((m) => m.id).sort()).toEqual(['alice', 'bob'])
    expect(JSON.stringify(bobMembers)).not.toContain('secret-role')

    const bobTab2 = await connect('bob')
    await bobTab2.request({ type: 'subscribe', topic: 'room:p' })
    // Occupancy: three connections, two users.
    expect(await hub.presenceStats('room:p')).toEqual({ connections: 3, users: 2 })
    expect(await hub.presenceStats('room:nobody')).toEqual({ connections: 0, users: 0 })
    bobTab2.socket.close()
    await once(bobTab2.socket, 'close')
    await new Promise((resolve) => setTimeout(resolve, 100))
    // Bob still has a tab open: no leave, and his second tab was no second join.
    expect(alice.received.filter((m) => m.type === 'presence' && m.leave)).toEqual([])
    expect(alice.received.filter(joinedBob)).toHaveLength(1)

    // Bob's last tab stops answering (no close frame): the heartbeat ends it, presence follows.
    ;(bob.socket as unknown as { _socket: Socket })._socket.pause()
    expect(await alice.next((m) => m.type === 'presence' && Array.isArray(m.leave), 3_000)).toMatchObject({
      leave: [{ id: 'bob', name: 'bob' }],
    })
  })

  it('delivers volatile publishes to who is connected now: no offset, nothing stored, nothing recovered', async () => {
    const seenVolatile: boolean[] = []
    const { connect, hub } = await start({
      beforePublish: (request) => {
        seenVolatile.push(request.volatile)
      },
    })
    const alice = await connect('alice')
    const bob = await connect('bob')
    const { epoch } = await alice.request({ type: 'subscribe', topic: 'room:v' })
    await bob.request({ type: 'subscribe', topic: 'room:v' })

    const ack = await alice.request({
      type: 'publish',
      topic: 'room:v',
      data: { typing: true },
      volatile: true,
    })
    expect(ack).toEqual({ type: 'ack', id: ack.id })
    expect(await bob.next(isMessage('room:v'))).toEqual({
      type: 'message',
      topic: 'room:v',
      data: { typing: true },
      volatile: true,
    })
    expect(await hub.publish('room:v', 'from the server', { volatile: true })).toBeUndefined()
    expect((await alice.next(isMessage('room:v'))).data).toBe('from the server')
    expect((await bob.next(isMessage('room:v'))).data).toBe('from the server')
    // The stored publish after them takes offset 1: volatile ones took none.
    expect(await alice.request({ type: 'publish', topic: 'room:v', data: 'kept' })).toMatchObject({
      offset: 1,
    })
    expect(await bob.next(isMessage('room:v'))).toMatchObject({ data: 'kept', offset: 1 })
    expect(seenVolatile).toEqual([true, false])
    expect(alice.received.filter(isMessage('room:v')).map((m) => m.data)).toEqual(['from the server'])

    // A client that comes back from before any of them recovers the stored message only.
    const late = await connect('carol')
    expect(
      await late.request({ type: 'subscribe', topic: 'room:v', since: { epoch, offset: 0 } }),
    ).toMatchObject({ recovered: true })
    expect(await late.next(isMessage('room:v'))).toMatchObject({ data: 'kept', offset: 1 })
    await alice.request({ type: 'publish', topic: 'room:v', data: 'marker', echo: true })
    await late.next((m) => isMessage('room:v')(m) && m.data === 'marker')
    expect(late.received.filter(isMessage('room:v')).map((m) => m.data)).toEqual(['kept', 'marker'])

    // One turn: stored and volatile messages keep the order they were published in.
    await Promise.all([
      hub.publish('room:v', 'v1', { volatile: true }),
      hub.publish('room:v', 'v2', { volatile: true }),
      hub.publish('room:v', 'stored in the same turn'),
      hub.publish('room:v', 'v3', { volatile: true }),
    ])
    await bob.next((m) => isMessage('room:v')(m) && m.data === 'v3')
    expect(
      bob.received
        .filter(isMessage('room:v'))
        .map((m) => m.data)
        .slice(-4),
    ).toEqual(['v1', 'v2', 'stored in the same turn', 'v3'])

    for (const bad of [
      { volatile: 'yes', code: 'BAD_REQUEST' },
      { volatile: true, key: 'k-1', code: 'BAD_REQUEST' },
    ]) {
      const { code, ...fields } = bad
      expect(await alice.request({ type: 'publish', topic: 'room:v', data: 1, ...fields })).toMatchObject({
        type: 'error',
        code,
      })
    }
  })

  it('drops volatile messages for a peer that is behind, and closes it for none of them', async () => {
    const { connect, hub } = await start(
      { volatileMaxBufferedBytes: 1024, presence: false },
      { maxBufferedBytes: 64 * 1024 * 1024 },
    )
    const alice = await connect('alice')
    const bob = await connect('bob')
    for (const client of [alice, bob]) await client.request({ type: 'subscribe', topic: 'typing' })
    await bob.request({ type: 'subscribe', topic: 'flood' })
    // Bob stops reading and 16 MB are on their way to him: more than the kernel takes.
    ;(bob.socket as unknown as { _socket: Socket })._socket.pause()
    const chunk = 'x'.repeat(64 * 1024)
    await Promise.all(Array.from({ length: 256 }, (_, i) => hub.publish('flood', { i, chunk })))
    await new Promise((resolve) => setImmediate(resolve)) // the hub writes a turn's messages after it
    await hub.publish('typing', 'alice is typing', { volatile: true })
    expect((await alice.next(isMessage('typing'))).data).toBe('alice is typing')
    expect(hub.stats.dropped).toBe(1)
    ;(bob.socket as unknown as { _socket: Socket })._socket.resume()
    await bob.next((m) => isMessage('flood')(m) && (m.data as { i: number }).i === 255, 15_000)
    await hub.publish('typing', 'still typing', { volatile: true })
    expect((await bob.next(isMessage('typing'))).data).toBe('still typing')
    expect(bob.received.filter(isMessage('typing')).map((m) => m.data)).toEqual(['still typing'])
    expect(bob.socket.readyState).toBe(WebSocket.OPEN)
  })

  it('refuses unauthorized subscribe and publish with FORBIDDEN and leaks nothing', async () => {
    const { connect, hub } = await start({
      authorize: ({ user, action, topic }) =>
        topic !== 'secret' || (user as { id: string } | undefined)?.id === 'admin' || action === 'call',
    })
    const admin = await connect('admin')
    const eve = await connect('eve')
    await admin.request({ type: 'subscribe', topic: 'secret' })
    expect(await eve.request({ type: 'subscribe', topic: 'secret' })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    })
    expect(await eve.request({ type: 'publish', topic: 'secret', data: 'x' })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    })
    await hub.publish('secret', 'classified')
    await admin.next(isMessage('secret'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(JSON.stringify(eve.received)).not.toContain('classified')
    expect(eve.received.filter((m) => m.type === 'presence')).toEqual([])
  })

  it('answers bad input with errors and keeps the socket usable', async () => {
    const { connect } = await start({ maxTopicLength: 64 })
    const client = await connect('a')
    client.send('{not json')
    expect(await client.next((m) => m.type === 'error')).toMatchObject({
      code: 'BAD_REQUEST',
      message: 'Malformed JSON',
    })
    client.send('[1,2]')
    expect(await client.next((m) => m.type === 'error')).toMatchObject({
      message: 'A message must be a JSON object',
    })
    expect(await client.request({ type: 'teleport' })).toMatchObject({
      code: 'BAD_REQUEST',
      message: 'Unknown message type',
    })
    expect(await client.request({ type: 'subscribe' })).toMatchObject({ code: 'BAD_REQUEST' })
    expect(await client.request({ type: 'subscribe', topic: 'x'.repeat(65) })).toMatchObject({
      code: 'BAD_REQUEST',
    })
    expect(await client.request({ type: 'subscribe', topic: 'bad\nname' })).toMatchObject({
      code: 'BAD_REQUEST',
    })
    expect(await client.request({ type: 'subscribe', topic: 't', since: { epoch: 5 } })).toMatchObject({
      code: 'BAD_REQUEST',
    })
    expect(await client.request({ type: 'publish', topic: 't' })).toMatchObject({ code: 'BAD_REQUEST' })
    expect(await client.request({ type: 'unsubscribe', topic: 'never' })).toMatchObject({
      code: 'BAD_REQUEST',
    })
    client.send({ type: 'ping', id: -1 })
    expect(await client.next((m) => m.type === 'error' && String(m.message).includes('id'))).toBeDefined()
    client.socket.send(Buffer.from([1, 2, 3]))
    expect(await client.next((m) => m.type === 'error' && String(m.message).includes('Binary'))).toBeDefined()
    client.send({ type: 'ping' })
    expect(await client.next((m) => m.type === 'pong')).toEqual({ type: 'pong' })
    expect(client.socket.readyState).toBe(WebSocket.OPEN)
  })

  it('limits subscriptions per connection', async () => {
    const { connect } = await start({ maxSubscriptionsPerPeer: 2 })
    const client = await connect('a')
    await client.request({ type: 'subscribe', topic: 'a' })
    await client.request({ type: 'subscribe', topic: 'b' })
    expect(await client.request({ type: 'subscribe', topic: 'c' })).toMatchObject({ code: 'BAD_REQUEST' })
    expect(await client.request({ type: 'subscribe', topic: 'a' })).toMatchObject({ code: 'BAD_REQUEST' })
    expect(await client.request({ type: 'unsubscribe', topic: 'a' })).toMatchObject({ type: 'ack' })
    expect(await client.request({ type: 'subscribe', topic: 'c' })).toMatchObject({ type: 'ack' })
  })

  it('runs RPC methods: result, error, timeout, unknown, schema', async () => {
    const { connect, hub } = await start({ callTimeoutMs: 100 })
    const upper: StandardSchemaV1<unknown, { text: string }> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (value) =>
          typeof value === 'object' && value !== null && typeof (value as Json).text === 'string'
            ? { value: { text: ((value as Json).text as string).toUpperCase() } }
            : { issues: [{ message: 'expected a string', path: ['text'] }] },
      },
    }
    hub.method('rename', (data, { user }) => ({ from: (user as { id: string }).id, to: data.text }), {
      schema: upper,
    })
    hub.method('fail', () => {
      throw new FlumenError('CONFLICT', 'Name taken')
    })
    hub.method('crash', () => {
      throw new Error('db password in here')
    })
    hub.method('slow', () => new Promise((resolve) => setTimeout(resolve, 1_000)))
    expect(() => hub.method('fail', () => 1)).toThrow(/already registered/)
    const client = await connect('carol')
    expect(await client.request({ type: 'call', method: 'rename', data: { text: 'dave' } })).toEqual({
      type: 'result',
      id: expect.any(Number),
      data: { from: 'carol', to: 'DAVE' },
    })
    expect(await client.request({ type: 'call', method: 'rename', data: { text: 1 } })).toMatchObject({
      code: 'BAD_REQUEST',
      message: 'Invalid input to rename: text: expected a string',
      issues: [{ message: 'expected a string', path: ['text'] }],
    })
    expect(await client.request({ type: 'call', method: 'fail' })).toMatchObject({
      code: 'CONFLICT',
      message: 'Name taken',
    })
    const crash = await client.request({ type: 'call', method: 'crash' })
    expect(crash).toMatchObject({ code: 'INTERNAL' })
    expect(JSON.stringify(crash)).not.toContain('password')
    expect(await client.request({ type: 'call', method: 'slow' })).toMatchObject({ code: 'TIMEOUT' })
    expect(await client.request({ type: 'call', method: 'nope' })).toMatchObject({ code: 'NOT_FOUND' })
  })

  it('replaces the user with an auth message', async () => {
    const { connect } = await start({
      authenticate: (token) => (token === 'good' ? { id: 'renewed' } : undefined),
      authorize: ({ user, topic }) =>
        topic !== 'vip' || (user as { id: string } | undefined)?.id === 'renewed',
    })
    const client = await connect('plain')
    expect(await client.request({ type: 'subscribe', topic: 'vip' })).toMatchObject({ code: 'FORBIDDEN' })
    expect(await client.request({ type: 'auth', token: 'bad' })).toMatchObject({ code: 'UNAUTHORIZED' })
    expect(await client.request({ type: 'auth', token: 'good' })).toMatchObject({ type: 'ack' })
    expect(await client.request({ type: 'subscribe', topic: 'vip' })).toMatchObject({ type: 'ack' })
  })
})

describe('recovery', () => {
  it('replays exactly the gap over 10,000 messages with random disconnects', async () => {
    const { connect, hub } = await start({ history: { size: 20_000 } })
    const total = 10_000
    const received: number[] = []
    let position: { epoch: string; offset: number } | undefined
    let published = 0
    let disconnects = 0
    // A deterministic "random" sequence, so a failure replays the same way.
    let seed = 42
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed / 2 ** 31
    }
    let publisher: Promise<void> | undefined
    const publishAll = async (): Promise<void> => {
      while (published < total) {
        const batch = Math.min(50, total - published)
        for (let i = 0; i < batch; i++) await hub.publish('stream', ++published)
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    while (received.length < total) {
      const client = await connect('r')
      const ack = await client.request({
        type: 'subscribe',
        topic: 'stream',
        ...(position ? { since: position } : {}),
      })
      expect(ack.recovered).toBe(true)
      position ??= { epoch: ack.epoch as string, offset: ack.offset as number }
      publisher ??= publishAll() // starts once the first subscription is in place
      const budget = 200 + Math.floor(random() * 1_500)
      for (let n = 0; n < budget && received.length < total; n++) {
        let message: Json
        try {
          message = await client.next(isMessage('stream'), 5_000)
        } catch {
          break
        }
        received.push(message.data as number)
        position = { epoch: message.epoch as string, offset: message.offset as number }
      }
      client.socket.terminate()
      disconnects++
    }
    await publisher
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    expect(disconnects).toBeGreaterThan(5)
  }, 60_000)

  it('never repeats what a history read covered, with an engine that delivers late', async () => {
    // Like Redis: stored at once, delivered through the server a little later.
    const inner = memoryEngine()
    const late: Engine = {
      ...inner,
      attach: (listener) =>
        inner.attach({
          onMessage: (message) => setTimeout(() => listener.onMessage(message), 30),
          onPresence: listener.onPresence,
        }),
    }
    const { connect, hub } = await start({ engine: late, presence: false })
    const watcher = await connect('w')
    await watcher.request({ type: 'subscribe', topic: 'slow' })
    const first = await hub.publish('slow', 1)
    const { epoch } = (await watcher.next(isMessage('slow'))) as { epoch: string }
    await hub.publish('slow', 2)
    await hub.publish('slow', 3) // both still on their way when the newcomer subscribes
    const newcomer = await connect('n')
    expect(
      await newcomer.request({ type: 'subscribe', topic: 'slow', since: { epoch, offset: first } }),
    ).toMatchObject({ recovered: true, offset: 3 })
    await hub.publish('slow', 4)
    await vi.waitFor(() =>
      expect(newcomer.received.filter(isMessage('slow')).map((m) => m.data)).toContain(4),
    )
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(newcomer.received.filter(isMessage('slow')).map((m) => m.data)).toEqual([2, 3, 4])
    expect(watcher.received.filter(isMessage('slow')).map((m) => m.data)).toEqual([1, 2, 3, 4])
  })

  it('says recovered:false when the gap left the history window', async () => {
    const { connect, hub } = await start({ history: { size: 10 } })
    const client = await connect('r')
    const ack = await client.request({ type: 'subscribe', topic: 'small' })
    client.socket.terminate()
    for (let i = 0; i < 50; i++) await hub.publish('small', i)
    const again = await connect('r')
    const resumed = await again.request({
      type: 'subscribe',
      topic: 'small',
      since: { epoch: ack.epoch, offset: ack.offset },
    })
    expect(resumed).toMatchObject({ type: 'ack', recovered: false, offset: 50 })
    await hub.publish('small', 'live')
    expect((await again.next(isMessage('small'))).data).toBe('live')
    expect(again.received.filter(isMessage('small'))).toHaveLength(1)
  })

  it('cleans up topics and presence when peers leave', async () => {
    const { connect, hub } = await start()
    const client = await connect('c')
    await client.request({ type: 'subscribe', topic: 'x' })
    expect(hub.stats.topics).toBe(1)
    client.socket.close()
    await vi.waitFor(() => expect(hub.stats.peers).toBe(0))
    expect(hub.stats.topics).toBe(0)
    expect(await hub.presence('x')).toEqual([])
  })
})

describe('hub: hostile clients', () => {
  it('counts pipelined subscribes against the cap before authorizing them: 101 at once, 100 acks', async () => {
    const authorize = async (): Promise<boolean> => {
      await new Promise((resolve) => setTimeout(resolve, 5))
      return true
    }
    for (const rateLimit of [false, undefined] as const) {
      const { connect } = await start({ authorize }, rateLimit === false ? { rateLimit: false } : {})
      const client = await connect('p')
      const ids = Array.from({ length: 101 }, () => nextId++)
      // One write: every frame is in before the first authorization settles.
      const frames = ids.map((id, i) => JSON.stringify({ type: 'subscribe', id, topic: `t${i}` }))
      for (const frame of frames) client.socket.send(frame)
      const answers = await Promise.all(ids.map((id) => client.next((m) => m.id === id)))
      expect(answers.filter((m) => m.type === 'ack')).toHaveLength(100)
      expect(answers.filter((m) => m.type === 'error')).toEqual([
        expect.objectContaining({
          code: 'BAD_REQUEST',
          message: 'More than 100 subscriptions on one connection',
        }),
      ])
      // The same topic twice in a row: one ack, one error.
      const again = [nextId++, nextId++]
      client.socket.send(JSON.stringify({ type: 'unsubscribe', id: nextId++, topic: 't0' }))
      for (const id of again) client.socket.send(JSON.stringify({ type: 'subscribe', id, topic: 'dup' }))
      const dup = await Promise.all(again.map((id) => client.next((m) => m.id === id)))
      expect(dup.map((m) => m.type).sort()).toEqual(['ack', 'error'])
    }
  })

  it('answers every publish the rate limit drops with its own id: 230 at once, 230 answers', async () => {
    const { connect } = await start()
    const client = await connect('flood')
    await client.request({ type: 'subscribe', topic: 'f' })
    const ids = Array.from({ length: 230 }, () => nextId++)
    for (const id of ids) client.socket.send(JSON.stringify({ type: 'publish', id, topic: 'f', data: id }))
    const answers = await Promise.all(ids.map((id) => client.next((m) => m.id === id)))
    const limited = answers.filter((m) => m.type === 'error')
    expect(limited.length).toBeGreaterThan(0)
    for (const answer of limited) expect(answer).toMatchObject({ code: 'RATE_LIMITED' })
    expect(answers.filter((m) => m.type === 'ack').length + limited.length).toBe(230)
    expect(client.socket.readyState).toBe(WebSocket.OPEN)
  })

  it('refuses JSON nested 20,000 deep with BAD_REQUEST, logging nothing', async () => {
    const logged: unknown[] = []
    const { connect } = await start({ logError: (err) => logged.push(err) })
    const client = await connect('deep')
    const id = nextId++
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`
    client.send(`{"type":"publish","id":${id},"topic":"d","data":${deep}}`)
    expect(await client.next((m) => m.type === 'error')).toMatchObject({
      code: 'BAD_REQUEST',
      message: 'JSON nested deeper than 32',
    })
    // Strings with brackets are not nesting.
    expect(
      await client.request({ type: 'publish', topic: 'd', data: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' }),
    ).toMatchObject({ type: 'ack' })
    expect(logged).toEqual([])
  })

  it('acks a subscribe, then sends the member list, and never the subscriber its own join', async () => {
    const { connect } = await start()
    const alice = await connect('alice')
    const id = nextId++
    alice.send({ type: 'subscribe', id, topic: 'room:order' })
    await alice.next((m) => m.type === 'presence' && Array.isArray(m.members))
    const forTopic = alice.received.filter((m) => m.id === id || m.topic === 'room:order')
    expect(
      forTopic.map((m) =>
        m.type === 'presence' ? Object.keys(m).filter((k) => k !== 'type' && k !== 'topic')[0] : m.type,
      ),
    ).toEqual(['ack', 'members'])
    const bob = await connect('bob')
    await bob.request({ type: 'subscribe', topic: 'room:order' })
    expect(await alice.next((m) => m.type === 'presence' && Array.isArray(m.join))).toMatchObject({
      join: [{ id: 'bob' }],
    })
    await bob.next((m) => m.type === 'presence' && Array.isArray(m.members))
    expect(bob.received.filter((m) => m.type === 'presence' && m.join)).toEqual([])
  })

  it('leaves no topic, presence, listener or timer behind after hostile clients', async () => {
    const { connect, hub, server } = await start({ maxSubscriptionsPerPeer: 5 })
    const check = await leakCheck({ emitters: [server.node] })
    for (let round = 0; round < 20; round++) {
      const client = await connect(`h${round}`)
      for (let i = 0; i < 10; i++) client.send({ type: 'subscribe', id: nextId++, topic: `leak:${i}` })
      client.send(`{"type":"publish","id":1,"topic":"x","data":${'['.repeat(100)}${']'.repeat(100)}}`)
      client.send('{broken')
      await client.next((m) => m.type === 'error')
      client.socket.terminate()
    }
    await vi.waitFor(() => expect(hub.stats.peers).toBe(0))
    expect(hub.stats.topics).toBe(0)
    expect(await hub.presence('leak:0')).toEqual([])
    sockets.splice(0)
    await check.assertClean()
  })
})
