import { AsyncLocalStorage } from 'node:async_hooks'
import { once } from 'node:events'
import type { FlumenServer } from '@flumen/core'
import { createApp, FlumenError, serve } from '@flumen/core'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { CallEvent, Hub, HubObserver, HubOptions, PublishEvent, WriteEvent } from './index.js'
import { createHub } from './index.js'

type Json = Record<string, unknown>

const servers: FlumenServer[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (options: HubOptions = {}): Promise<{ hub: Hub; url: string }> => {
  const hub = createHub({ presence: false, ...options })
  const app = createApp()
  app.get('/ws', hub.websocket())
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  return { hub, url: `ws://127.0.0.1:${server.port}/ws` }
}

/** A protocol client whose `request` resolves with the answer carrying the request's id. */
const connect = async (url: string): Promise<{ request(message: Json): Promise<Json>; messages: Json[] }> => {
  const socket = new WebSocket(url, 'flumen.v1')
  sockets.push(socket)
  const messages: Json[] = []
  const waiting = new Map<unknown, (message: Json) => void>()
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as Json
    messages.push(message)
    waiting.get(message.id)?.(message)
  })
  await once(socket, 'open')
  return {
    messages,
    request: (message) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(message)}`)), 5_000)
        waiting.set(message.id, (answer) => {
          clearTimeout(timer)
          resolve(answer)
        })
        socket.send(JSON.stringify(message))
      }),
  }
}

describe('hub.observe', () => {
  it('tells of client and server publishes, method calls and the writes to peers', async () => {
    const { hub, url } = await start()
    hub.method('double', (data) => (data as number) * 2)
    hub.method('fail', () => {
      throw new FlumenError('FORBIDDEN', 'no')
    })
    const publishes: PublishEvent[] = []
    const calls: CallEvent[] = []
    const writes: WriteEvent[] = []
    hub.observe({
      onPublish: (event) => publishes.push(event),
      onCall: (event) => calls.push(event),
      onWrite: (event) => writes.push(event),
    })
    const reader = await connect(url)
    const writer = await connect(url)
    expect(await reader.request({ type: 'subscribe', id: 1, topic: 'room' })).toMatchObject({ type: 'ack' })
    expect(await writer.request({ type: 'publish', id: 2, topic: 'room', data: 'a' })).toMatchObject({
      offset: 1,
    })
    await hub.publish('room', 'b')
    await hub.publish('room', 'c', { volatile: true })
    expect(await writer.request({ type: 'call', id: 3, method: 'double', data: 21 })).toMatchObject({
      data: 42,
    })
    expect(await writer.request({ type: 'call', id: 4, method: 'fail' })).toMatchObject({ code: 'FORBIDDEN' })
    await expect.poll(() => reader.messages.filter((m) => m.type === 'message').length).toBe(3)

    expect(
      publishes.map(({ topic, source, volatile, offset }) => ({ topic, source, volatile, offset })),
    ).toEqual([
      { topic: 'room', source: 'client', volatile: false, offset: 1 },
      { topic: 'room', source: 'server', volatile: false, offset: 2 },
      { topic: 'room', source: 'server', volatile: true, offset: undefined },
    ])
    expect(
      calls.map(({ method, error }) => ({ method, code: (error as FlumenError | undefined)?.code })),
    ).toEqual([
      { method: 'double', code: undefined },
      { method: 'fail', code: 'FORBIDDEN' },
    ])
    expect(writes.reduce((sum, write) => sum + write.messages, 0)).toBe(3)
    expect(writes.every((write) => write.topic === 'room' && write.peers === 1)).toBe(true)
    for (const event of [...publishes, ...calls]) expect(event.durationMs).toBeGreaterThanOrEqual(0)
    for (const write of writes) expect(write.delayMs).toBeGreaterThanOrEqual(0)
  })

  it('tells of a publish the engine refused, and stops when the observer leaves', async () => {
    const { hub } = await start()
    const publishes: PublishEvent[] = []
    const stop = hub.observe({ onPublish: (event) => publishes.push(event) })
    await hub.engine.close()
    await expect(hub.publish('room', 'x')).rejects.toThrow()
    expect(publishes).toHaveLength(1)
    expect(publishes[0]!.error).toBeDefined()
    stop()
    await expect(hub.publish('room', 'y')).rejects.toThrow()
    expect(publishes).toHaveLength(1)
  })

  it('runs publishes and calls inside each observer’s around: its context reaches the handler and the write', async () => {
    const { hub, url } = await start()
    const context = new AsyncLocalStorage<string>()
    const order: string[] = []
    const seen: Record<string, (string | undefined)[]> = { publish: [], call: [], write: [] }
    hub.method('where', () => context.getStore())
    const observer = {
      around: <T>(operation: Parameters<NonNullable<HubObserver['around']>>[0], run: () => Promise<T>) => {
        order.push(`outer ${operation.kind}`)
        return context.run(
          operation.kind === 'publish' ? `publish ${operation.topic}` : `call ${operation.method}`,
          run,
        )
      },
      onPublish: () => seen.publish!.push(context.getStore()),
      onCall: () => seen.call!.push(context.getStore()),
      onWrite: () => seen.write!.push(context.getStore()),
    }
    hub.observe(observer)
    const stop = hub.observe({
      around: (operation, run) => {
        order.push(`inner ${operation.kind}`)
        return run()
      },
    })
    const reader = await connect(url)
    await reader.request({ type: 'subscribe', id: 1, topic: 'room' })
    await hub.publish('room', 'traced')
    await expect.poll(() => seen.write!.length).toBe(1)
    expect(await reader.request({ type: 'call', id: 2, method: 'where' })).toMatchObject({
      data: 'call where',
    })
    expect(seen).toEqual({ publish: ['publish room'], call: ['call where'], write: ['publish room'] })
    expect(order).toEqual(['outer publish', 'inner publish', 'outer call', 'inner call'])
    stop()
    // The same observer registered twice is told twice; each registration stops on its own.
    const stopAgain = hub.observe(observer)
    await hub.publish('room', 'twice')
    expect(seen.publish).toHaveLength(3)
    stopAgain()
    await hub.publish('room', 'once')
    expect(seen.publish).toHaveLength(4)
  })

  it('logs an observer that throws; the publish and its delivery go on', async () => {
    const logged: unknown[] = []
    const { hub, url } = await start({ logError: (err) => logged.push(err) })
    hub.observe({
      onPublish: () => {
        throw new Error('observer broke')
      },
      onWrite: () => {
        throw new Error('observer broke too')
      },
    })
    const reader = await connect(url)
    await reader.request({ type: 'subscribe', id: 1, topic: 'room' })
    expect(await hub.publish('room', 'still here')).toBe(1)
    await expect.poll(() => reader.messages.some((m) => m.data === 'still here')).toBe(true)
    expect(logged.map((err) => (err as Error).message)).toEqual(['observer broke', 'observer broke too'])
    expect(() => hub.observe(null as never)).toThrow('hub.observe: observer must be an object of callbacks')
  })
})
