import type { AddressInfo } from 'node:net'
import type { Hub } from '@flumen/broadcast'
import { createDelta, createHub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { leakCheck, openSse, waitFor } from '@flumen/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import type { StreamEvent } from './node.js'
import { createClient, openEventStream } from './node.js'

// Topics whose messages are versions of one document, sent as deltas: over WebSocket and SSE,
// through recovery and batches, with the fallbacks when a delta does not apply.
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A ~10 KB state document; `version` changes one row's value and the version field. */
const stateDocument = (version: number): Record<string, unknown> => ({
  id: 'board',
  version,
  rows: Array.from({ length: 120 }, (_, i) => ({
    id: i,
    title: `Task ${i}: something to do`,
    done: i === version % 120,
    points: i === version % 120 ? version : i % 8,
  })),
})

interface Started {
  hub: Hub
  server: FlumenServer
  port: number
  wsRoute: ReturnType<Hub['websocket']>
  sseRoute: ReturnType<Hub['sse']>
}

const start = async (hubOptions: { deltas?: boolean } = {}): Promise<Started> => {
  const hub = createHub({ presence: false, logError: () => {}, ...hubOptions })
  const app = createApp({ logError: () => {} })
  const wsRoute = hub.websocket({ rateLimit: { messagesPerSecond: 10_000, burst: 10_000 } })
  const sseRoute = hub.sse({ heartbeatMs: false, retryMs: 50 })
  app.get('/ws', wsRoute)
  app.get('/sse', sseRoute)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  cleanups.push(() => server.close({ timeoutMs: 200 }))
  return { hub, server, port: server.port, wsRoute, sseRoute }
}

const document = (version: number): string => JSON.stringify(stateDocument(version))

/** A raw `ws` client on the hub: every text frame it receives, parsed, and their sizes. */
const rawClient = async (
  port: number,
): Promise<{ ws: WebSocket; frames: Record<string, unknown>[]; bytes: number[] }> => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['flumen.v1'])
  const frames: Record<string, unknown>[] = []
  const bytes: number[] = []
  ws.on('message', (data) => {
    bytes.push((data as Buffer).length)
    frames.push(JSON.parse(String(data)))
  })
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  cleanups.push(() => ws.close())
  return { ws, frames, bytes }
}

describe('deltas over WebSocket', () => {
  it('send a changed document as a few bytes, and the client hands its handlers the whole document', async () => {
    const { hub, port } = await start()
    const raw = await rawClient(port)
    raw.ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'board', delta: 'fossil' }))
    const client = createClient({ url: `ws://127.0.0.1:${port}/ws` })
    cleanups.push(() => client.close())
    const seen: unknown[] = []
    await client.subscribe('board', (data) => seen.push(data), { delta: true }).ready
    await waitFor(() => raw.frames.some((f) => f.type === 'ack'))
    expect(raw.frames[0]).toMatchObject({ type: 'ack', id: 1, delta: 'fossil' })
    for (let version = 1; version <= 20; version++) await hub.publish('board', stateDocument(version))
    await waitFor(() => seen.length === 20 && raw.frames.length === 21)
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => stateDocument(i + 1)))
    const messages = raw.frames.slice(1)
    // The first message is whole (the subscriber had no base); every other one is a delta.
    expect(messages[0]).toHaveProperty('data')
    for (const message of messages.slice(1)) {
      expect(message).not.toHaveProperty('data')
      expect(typeof message.delta).toBe('string')
    }
    const full = JSON.stringify(stateDocument(2)).length
    const deltaBytes = raw.bytes.slice(2)
    expect(Math.max(...deltaBytes)).toBeLessThan(full / 20)
  })

  it('are not sent to subscribers that did not ask, nor when the hub turns them off', async () => {
    const { hub, port } = await start({ deltas: false })
    const raw = await rawClient(port)
    raw.ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'board', delta: 'fossil' }))
    await waitFor(() => raw.frames.length === 1)
    expect(raw.frames[0]).not.toHaveProperty('delta')
    for (let version = 1; version <= 3; version++) await hub.publish('board', stateDocument(version))
    await waitFor(() => raw.frames.length === 4)
    for (const message of raw.frames.slice(1)) expect(message.data).toBeDefined()
  })

  it('refuse an unknown encoding', async () => {
    const { port } = await start()
    const raw = await rawClient(port)
    raw.ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'board', delta: 'zstd' }))
    await waitFor(() => raw.frames.length === 1)
    expect(raw.frames[0]).toMatchObject({ type: 'error', id: 1, code: 'BAD_REQUEST' })
  })

  it("chain through batches, recovery after a reconnect and the publisher's own messages", async () => {
    const { hub, port, server, wsRoute } = await start()
    const check = await leakCheck({ emitters: [server.node] })
    // A raw subscriber sees what goes on the wire: after its first message, only deltas.
    const raw = await rawClient(port)
    raw.ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'board', delta: 'fossil' }))
    await waitFor(() => raw.frames.length === 1)
    const url = `ws://127.0.0.1:${port}/ws`
    const reader = createClient({ url, retryDelayMs: () => 20 })
    const writer = createClient({ url })
    cleanups.push(
      () => reader.close(),
      () => writer.close(),
    )
    const seen: unknown[] = []
    const errors: unknown[] = []
    reader.on('error', (err) => errors.push(err))
    await reader.subscribe('board', (data) => seen.push(data), { delta: true }).ready
    const readerPeer = [...wsRoute.peers][1]!
    // The writer subscribes too (with deltas), and publishes: it does not get its own messages.
    const writerSeen: unknown[] = []
    await writer.subscribe('board', (data) => writerSeen.push(data), { delta: true }).ready
    let version = 0
    const next = (): Record<string, unknown> => stateDocument(++version)
    // Several in one turn: one batch of deltas.
    await Promise.all([
      hub.publish('board', next()),
      hub.publish('board', next()),
      hub.publish('board', next()),
    ])
    await writer.publish('board', next())
    await hub.publish('board', next())
    await waitFor(() => seen.length === version && writerSeen.length === version - 1)
    // The reader drops; messages are published meanwhile; it recovers them (as deltas after the first).
    const dropped = new Promise<void>((resolve) => {
      const off = reader.on('state', (state) => {
        if (state === 'reconnecting') {
          off()
          resolve()
        }
      })
    })
    readerPeer.ws.terminate()
    await dropped
    for (let i = 0; i < 5; i++) await hub.publish('board', next())
    await waitFor(() => seen.length === version && writerSeen.length === version - 1, 10_000)
    expect(seen).toEqual(Array.from({ length: version }, (_, i) => stateDocument(i + 1)))
    expect(writerSeen).toEqual(
      Array.from({ length: version }, (_, i) => stateDocument(i + 1)).filter((_, i) => i !== 3),
    )
    expect(errors).toEqual([])
    expect(raw.frames.slice(2).every((frame) => typeof frame.delta === 'string')).toBe(true)
    expect(raw.frames.length).toBe(version + 1)
    // Recovery from a position: the first missed message whole, the others as deltas.
    const again = await rawClient(port)
    const since = raw.frames[3] as { epoch: string; offset: number }
    again.ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'board', delta: 'fossil', since }))
    await waitFor(() => again.frames.length === 1 + version - since.offset)
    expect(again.frames[1]).toMatchObject({ offset: since.offset + 1, data: stateDocument(since.offset + 1) })
    expect(again.frames.slice(2).every((frame) => typeof frame.delta === 'string')).toBe(true)
    again.ws.close()
    raw.ws.close()
    await reader.close()
    await writer.close()
    await waitFor(() => hub.stats.topics === 0)
    await check.assertClean()
  })
})

describe('a delta that does not apply', () => {
  it('makes the client resubscribe from its last message, which brings the rest in full', async () => {
    // A server that sends a delta made against another text than the message before.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'flumen.v1' })
    cleanups.push(() => new Promise((resolve) => wss.close(resolve)))
    await new Promise((resolve) => wss.once('listening', resolve))
    const requests: Record<string, unknown>[] = []
    wss.on('connection', (ws) => {
      ws.on('message', (raw) => {
        const message = JSON.parse(String(raw)) as Record<string, unknown>
        requests.push(message)
        const reply = (frame: unknown): void => ws.send(JSON.stringify(frame))
        const at = (offset: number) => ({ type: 'message', topic: 'board', epoch: 'e', offset })
        if (message.type === 'unsubscribe') reply({ type: 'ack', id: message.id })
        if (message.type !== 'subscribe') return
        const since = message.since as { offset: number } | undefined
        reply({
          type: 'ack',
          id: message.id,
          recovered: true,
          epoch: 'e',
          offset: since?.offset ?? 0,
          delta: 'fossil',
        })
        if (!since) {
          reply({ ...at(1), data: stateDocument(1) })
          reply({ ...at(2), delta: createDelta(document(99), document(2)) })
        } else reply({ ...at(2), data: stateDocument(2) })
      })
    })
    const client = createClient({ url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` })
    cleanups.push(() => client.close())
    const errors: unknown[] = []
    client.on('error', (err) => errors.push(err))
    const seen: unknown[] = []
    client.subscribe('board', (data) => seen.push(data), { delta: true })
    await waitFor(() => seen.length === 2)
    expect(seen).toEqual([stateDocument(1), stateDocument(2)])
    expect(requests.map(({ type, since, delta }) => ({ type, since, delta }))).toEqual([
      { type: 'subscribe', since: undefined, delta: 'fossil' },
      { type: 'unsubscribe', since: undefined, delta: undefined },
      { type: 'subscribe', since: { epoch: 'e', offset: 1 }, delta: 'fossil' },
    ])
    expect(errors).toEqual([])
  })

  it('makes openEventStream reconnect from the event before it', async () => {
    const { createServer } = await import('node:http')
    const lastEventIds: (string | undefined)[] = []
    const server = createServer((req, res) => {
      lastEventIds.push(req.headers['last-event-id'] as string | undefined)
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const event = (id: string, data: unknown): string =>
        `id: ${id}\nevent: message\ndata: ${JSON.stringify(data)}\n\n`
      const at = (offset: number) => ({ type: 'message', topic: 'board', epoch: 'e', offset })
      if (lastEventIds.length === 1)
        res.write(
          event('c1', { ...at(1), data: stateDocument(1) }) +
            event('c2', { ...at(2), delta: createDelta(document(99), document(2)) }),
        )
      else res.write(event('c2', { ...at(2), data: stateDocument(2) }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    })
    const stream = openEventStream(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, {
      delta: true,
    })
    cleanups.push(() => stream.close())
    const events: StreamEvent[] = []
    for await (const event of stream) if (events.push(event) === 2) break
    expect(events.map((event) => JSON.parse(event.data).data)).toEqual([stateDocument(1), stateDocument(2)])
    expect(lastEventIds).toEqual([undefined, 'c1'])
  })
})

describe('deltas over SSE', () => {
  it('are sent with ?delta=fossil, and openEventStream turns them back into whole messages', async () => {
    const { hub, port, sseRoute } = await start()
    const raw = await openSse(`http://127.0.0.1:${port}/sse?topic=board&delta=fossil`)
    cleanups.push(() => raw.close())
    const stream = openEventStream(`http://127.0.0.1:${port}/sse?topic=board`, { delta: true })
    cleanups.push(() => stream.close())
    const events: StreamEvent[] = []
    const reading = (async () => {
      for await (const event of stream) if (event.event === 'message' && events.push(event) === 10) break
    })()
    await waitFor(() => sseRoute.peers.size === 2 && raw.events.some((e) => e.event === 'position'))
    for (let version = 1; version <= 10; version++) await hub.publish('board', stateDocument(version))
    await reading
    expect(events.map((event) => JSON.parse(event.data).data)).toEqual(
      Array.from({ length: 10 }, (_, i) => stateDocument(i + 1)),
    )
    await waitFor(() => raw.events.filter((e) => e.event === 'message').length === 10)
    const onWire = raw.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data))
    expect(onWire[0]).toHaveProperty('data')
    for (const message of onWire.slice(1)) expect(typeof message.delta).toBe('string')
  })

  it('refuse an unknown encoding with a 400', async () => {
    const { port } = await start()
    const response = await fetch(`http://127.0.0.1:${port}/sse?topic=board&delta=gzip`)
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: { code: 'BAD_REQUEST' } })
  })
})
