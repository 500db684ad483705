// A client with a contract against real hubs: what it receives is checked (and shaped by the
// schemas' output) before the app sees it. Bad data comes from a hub that has no contract.
import type { Hub } from '@flumen/broadcast'
import { createHub } from '@flumen/broadcast'
import { defineContract } from '@flumen/contract'
import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import * as v from 'valibot'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { Client, FlumenClientError } from './node.js'
import { createClient, openEventStream } from './node.js'

type Env = { Bindings: FlumenBindings; Variables: { user: unknown } }

const contract = defineContract({
  topics: {
    'room:{id}': {
      message: z.object({ text: z.string(), at: z.iso.datetime().transform((at) => new Date(at)) }),
      presence: v.object({ id: v.string(), name: v.string() }),
    },
    // An asynchronous check (a lookup, say): deliveries still keep their order.
    'audit:{id}': { message: z.object({ n: z.number() }).refine(async ({ n }) => n >= 0, 'n is negative') },
  },
  methods: {
    sum: { input: z.object({ a: z.number(), b: z.number() }), output: v.object({ sum: v.number() }) },
  },
})

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A hub without a contract: it stores and sends whatever it is given. */
const startLooseHub = async (): Promise<{ hub: Hub; server: FlumenServer; url: string }> => {
  const hub = createHub({ logError: () => {} })
  const app = createApp<Env>()
  app.use('*', async (c, next) => {
    const name = c.req.query('user') ?? 'ann'
    c.set('user', { id: name, name })
    await next()
  })
  app.get('/ws', hub.websocket())
  app.get('/sse', hub.sse())
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  cleanups.push(() => server.close({ timeoutMs: 200 }))
  return { hub, server, url: `ws://127.0.0.1:${server.port}/ws` }
}

const typedClient = (url: string): { client: Client<typeof contract>; errors: FlumenClientError[] } => {
  const client = createClient({ url, contract, keepAlive: false })
  cleanups.push(() => client.close())
  const errors: FlumenClientError[] = []
  client.on('error', (error) => errors.push(error))
  return { client, errors }
}

const until = async (condition: () => boolean): Promise<void> => {
  await expect.poll(condition, { timeout: 5_000 }).toBe(true)
}

describe('createClient({ contract })', () => {
  it('hands the app checked messages as the schema outputs them, and reports the others', async () => {
    const { hub, url } = await startLooseHub()
    const { client, errors } = typedClient(url)
    const received: { text: string; at: Date }[] = []
    await client.subscribe('room:1', (message) => received.push(message)).ready
    await hub.publish('room:1', { text: 'first', at: '2026-12-01T10:00:00Z' })
    await hub.publish('room:1', { text: 2, at: 'yesterday' })
    await hub.publish('room:1', { text: 'third', at: '2026-12-01T10:00:02Z' })
    await until(() => received.length === 2 && errors.length === 1)
    expect(received.map((m) => m.text)).toEqual(['first', 'third'])
    expect(received[0]!.at).toBeInstanceOf(Date)
    expect(errors[0]).toMatchObject({ code: 'INVALID_MESSAGE', topic: 'room:1' })
    expect(errors[0]!.issues?.map((issue) => issue.path)).toEqual([['text'], ['at']])
  })

  it('keeps the order of a topic whose schema is asynchronous', async () => {
    const { hub, url } = await startLooseHub()
    const { client, errors } = typedClient(url)
    const received: number[] = []
    await client.subscribe('audit:1', ({ n }) => received.push(n)).ready
    for (const n of [1, 2, -3, 4, 5]) void hub.publish('audit:1', { n })
    await until(() => received.length === 4)
    expect(received).toEqual([1, 2, 4, 5])
    expect(errors.map((error) => error.message)).toEqual([expect.stringMatching(/n is negative/)])
  })

  it('checks call results and presence members', async () => {
    const { hub, url } = await startLooseHub()
    hub.method('sum', (data) => {
      const { a, b } = data as { a: number; b: number }
      return a === 0 ? { sum: 'zero' } : { sum: a + b }
    })
    const { client, errors } = typedClient(url)
    await until(() => client.state === 'open') // calls are not queued while connecting
    expect(await client.call('sum', { a: 1, b: 2 })).toEqual({ sum: 3 })
    await expect(client.call('sum', { a: 0, b: 2 })).rejects.toMatchObject({
      code: 'INVALID_MESSAGE',
      issues: [{ path: ['sum'] }],
    })
    // The loose hub's presence members are { id, name }: they pass; a broken one would not.
    await client.subscribe('room:2', () => {}).ready
    await until(() => client.presence('room:2').length === 1)
    expect(client.presence('room:2')).toEqual([{ id: 'ann', name: 'ann' }])
    expect(errors).toEqual([])
  })

  it('gets the server’s schema issues on a refused publish', async () => {
    const hub = createHub({ contract, logError: () => {} })
    const app = createApp<Env>()
    app.get('/ws', hub.websocket())
    const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
    cleanups.push(() => server.close({ timeoutMs: 200 }))
    const { client } = typedClient(`ws://127.0.0.1:${server.port}/ws`)
    // @ts-expect-error: at is an ISO date string
    await expect(client.publish('room:1', { text: 'hi', at: 5 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      issues: [{ path: ['at'] }],
    })
    expect(await client.publish('room:1', { text: 'hi', at: '2026-12-01T10:00:00Z' })).toBe(1)
  })

  it('reads hub.sse() with the same contract: checked messages only', async () => {
    const { hub, server } = await startLooseHub()
    const invalid: FlumenClientError[] = []
    const stream = openEventStream(`http://127.0.0.1:${server.port}/sse?topic=room:1`, {
      contract,
      onInvalid: (error) => invalid.push(error),
    })
    cleanups.push(() => stream.close())
    const texts: string[] = []
    const reading = (async () => {
      for await (const event of stream) {
        if (event.message?.pattern !== 'room:{id}') continue
        texts.push(event.message.data.text)
        expect(event.message.data.at).toBeInstanceOf(Date)
        if (texts.length === 2) break
      }
    })()
    await until(() => hub.stats.peers === 1)
    await hub.publish('room:1', { text: 'one', at: '2026-12-01T10:00:00Z' })
    await hub.publish('room:1', { text: 'bad' })
    await hub.publish('room:1', { text: 'two', at: '2026-12-01T10:00:01Z' })
    await reading
    expect(texts).toEqual(['one', 'two'])
    expect(invalid).toMatchObject([{ code: 'INVALID_MESSAGE', topic: 'room:1' }])
  })
})
