import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { ForkedServer, RedisServer, TestSseClient } from '@flumen/testing'
import {
  forkServer,
  openSse,
  requireRedis,
  sharedRedisUrl,
  startRedis as startOwnRedis,
  uniquePrefix,
} from '@flumen/testing'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'

const available = await requireRedis()

type Json = Record<string, unknown>

const fixture = fileURLToPath(new URL('./node.fixture.ts', import.meta.url))

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A Flumen node in its own process. */
const startNode = async (env: Record<string, string>): Promise<ForkedServer> => {
  const node = await forkServer(fixture, env)
  cleanups.push(() => node.kill())
  return node
}

interface Client {
  socket: WebSocket
  received: Json[]
  request(message: Json): Promise<Json>
  waitFor(match: (message: Json) => boolean, timeoutMs?: number): Promise<Json>
}

let nextId = 1
const connect = async (node: ForkedServer, user: string): Promise<Client> => {
  const socket = new WebSocket(`ws://127.0.0.1:${node.port}/ws?user=${user}`, 'flumen.v1')
  cleanups.push(() => socket.terminate())
  const received: Json[] = []
  const waiters = new Set<() => void>()
  socket.on('message', (data: Buffer) => {
    received.push(JSON.parse(data.toString()) as Json)
    for (const waiter of [...waiters]) waiter()
  })
  await once(socket, 'open')
  const waitFor = (match: (message: Json) => boolean, timeoutMs = 5_000): Promise<Json> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = received.find(match)
        if (found) {
          waiters.delete(check)
          clearTimeout(timer)
          resolve(found)
        }
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no matching message from ${user}; got ${JSON.stringify(received.slice(-3))}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  return {
    socket,
    received,
    waitFor,
    request: (message) => {
      const id = nextId++
      socket.send(JSON.stringify({ ...message, id }))
      return waitFor((m) => m.id === id)
    },
  }
}

const sse = async (
  node: ForkedServer,
  query: string,
  headers: Record<string, string> = {},
): Promise<TestSseClient> => {
  const client = await openSse(`http://127.0.0.1:${node.port}/sse?${query}`, headers)
  cleanups.push(() => client.close())
  return client
}

const messagesOf = (client: Client, topic: string): Json[] =>
  client.received.filter((m) => m.type === 'message' && m.topic === topic)

/** A Redis of our own, to kill and restart without touching the shared one. */
const startRedis = async (): Promise<RedisServer> => {
  const server = await startOwnRedis()
  cleanups.push(() => server.destroy())
  return server
}

describe.skipIf(!available)('two nodes on one Redis', () => {
  it('a message published on node A reaches WS and SSE clients on node B, once', async () => {
    const env = { REDIS_URL: sharedRedisUrl, PREFIX: uniquePrefix() }
    const [a, b] = await Promise.all([startNode(env), startNode(env)])
    const alice = await connect(a, 'alice')
    const bob = await connect(b, 'bob')
    await bob.request({ type: 'subscribe', topic: 'room:1' })
    const stream = await sse(b, 'topic=room:1')
    expect(await alice.request({ type: 'publish', topic: 'room:1', data: 'hello from A' })).toMatchObject({
      type: 'ack',
      offset: 1,
    })
    await bob.waitFor((m) => m.type === 'message' && m.data === 'hello from A')
    const isMessage = (e: { data: string }): boolean => JSON.parse(e.data).type === 'message'
    const event = await stream.next(isMessage)
    expect(JSON.parse(event.data)).toMatchObject({ topic: 'room:1', data: 'hello from A', offset: 1 })
    await alice.request({ type: 'publish', topic: 'room:1', data: 'second' })
    await bob.waitFor((m) => m.type === 'message' && m.data === 'second')
    expect(messagesOf(bob, 'room:1').map((m) => m.data)).toEqual(['hello from A', 'second'])
    expect(JSON.parse((await stream.next(isMessage)).data)).toMatchObject({ data: 'second', offset: 2 })
  }, 30_000)

  it('a client that moves from A to B with since recovers exactly the gap', async () => {
    const env = { REDIS_URL: sharedRedisUrl, PREFIX: uniquePrefix() }
    const [a, b] = await Promise.all([startNode(env), startNode(env)])
    const publisher = await connect(a, 'pub')
    const mover = await connect(a, 'mover')
    const ack = await mover.request({ type: 'subscribe', topic: 'feed' })
    for (let i = 1; i <= 5; i++) await publisher.request({ type: 'publish', topic: 'feed', data: i })
    await mover.waitFor((m) => m.type === 'message' && m.data === 5)
    const last = messagesOf(mover, 'feed').at(-1)!
    mover.socket.terminate()
    for (let i = 6; i <= 20; i++) await publisher.request({ type: 'publish', topic: 'feed', data: i })
    const moved = await connect(b, 'mover')
    const recovered = await moved.request({
      type: 'subscribe',
      topic: 'feed',
      since: { epoch: last.epoch, offset: last.offset },
    })
    expect(recovered).toMatchObject({ type: 'ack', recovered: true, epoch: ack.epoch, offset: 20 })
    await moved.waitFor((m) => m.type === 'message' && m.data === 20)
    await publisher.request({ type: 'publish', topic: 'feed', data: 21 })
    await moved.waitFor((m) => m.type === 'message' && m.data === 21)
    expect(messagesOf(moved, 'feed').map((m) => m.data)).toEqual(Array.from({ length: 16 }, (_, i) => i + 6))
  }, 30_000)

  it('node B killed with SIGKILL: its presence entries expire', async () => {
    const env = { REDIS_URL: sharedRedisUrl, PREFIX: uniquePrefix(), NODE_TTL_MS: '600' }
    const [a, b] = await Promise.all([startNode(env), startNode(env)])
    const alice = await connect(a, 'alice')
    await alice.request({ type: 'subscribe', topic: 'room:p' })
    const bob = await connect(b, 'bob')
    await bob.request({ type: 'subscribe', topic: 'room:p' })
    await alice.waitFor(
      (m) => m.type === 'presence' && Array.isArray(m.join) && (m.join as Json[]).some((u) => u.id === 'bob'),
    )
    const killedAt = Date.now()
    await b.kill()
    await alice.waitFor(
      (m) =>
        m.type === 'presence' && Array.isArray(m.leave) && (m.leave as Json[]).some((u) => u.id === 'bob'),
      5_000,
    )
    expect(Date.now() - killedAt).toBeLessThan(3_000)
    // A newcomer sees only alice.
    const carol = await connect(a, 'carol')
    await carol.request({ type: 'subscribe', topic: 'room:p' })
    const snapshot = await carol.waitFor((m) => m.type === 'presence' && Array.isArray(m.members))
    expect((snapshot.members as Json[]).map((u) => u.id).sort()).toEqual(['alice', 'carol'])
  }, 30_000)

  it('Redis restarted mid-stream: both nodes recover, acked publishes are delivered, failed ones were reported', async () => {
    const redis = await startRedis()
    const env = { REDIS_URL: redis.url, PREFIX: uniquePrefix() }
    const [a, b] = await Promise.all([startNode(env), startNode(env)])
    const publisher = await connect(a, 'pub')
    const reader = await connect(b, 'reader')
    await reader.request({ type: 'subscribe', topic: 'live' })
    const acked: number[] = []
    const failed: number[] = []
    let n = 0
    let running = true
    const publishing = (async () => {
      while (running) {
        const i = n++
        const reply = await publisher.request({ type: 'publish', topic: 'live', data: i })
        if (reply.type === 'ack') acked.push(i)
        else failed.push(i)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, 400))
    await redis.stop()
    await new Promise((resolve) => setTimeout(resolve, 500))
    await redis.start()
    // Both nodes come back: publishes are acked again and reach the reader on the other node.
    const resumedAt = acked.length
    const deadline = Date.now() + 10_000
    while (acked.length < resumedAt + 30 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20))
    running = false
    await publishing
    expect(failed.length).toBeGreaterThan(0)
    expect(acked.length).toBeGreaterThan(resumedAt + 20)
    const lastAcked = acked.at(-1)!
    await reader.waitFor((m) => m.type === 'message' && m.data === lastAcked, 10_000)
    const delivered = new Set(messagesOf(reader, 'live').map((m) => m.data))
    expect(acked.filter((i) => !delivered.has(i))).toEqual([])
    expect(failed.filter((i) => delivered.has(i))).toEqual([])
    // Each message once, in publish order.
    const order = messagesOf(reader, 'live').map((m) => m.data as number)
    expect(order).toEqual([...new Set(order)].sort((x, y) => x - y))
  }, 40_000)
})
