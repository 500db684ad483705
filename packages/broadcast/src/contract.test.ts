// The hub with a contract, over real sockets: what clients send is checked before the app sees
// it, topics outside the contract are refused, and the server's own data is held to it too.
import { once } from 'node:events'
import { defineContract } from '@flumen/contract'
import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import * as v from 'valibot'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { z } from 'zod'
import type { HubOptions } from './index.js'
import { createHub } from './index.js'

type Json = Record<string, unknown>
type Env = { Bindings: FlumenBindings; Variables: { user: unknown } }

const contract = defineContract({
  topics: {
    // zod: what a room carries, and what a client may send to it (the server stamps the sender).
    'room:{id}': {
      message: z.object({ text: z.string().min(1).max(200), from: z.string() }),
      publish: z.object({ text: z.string().min(1).max(200) }),
      presence: z.object({ id: z.string(), name: z.string() }),
    },
    // valibot: cursors, published as they are.
    'doc:{doc}:cursor': { message: v.object({ x: v.number(), y: v.number() }) },
    ticks: { message: v.object({ n: v.number() }) },
  },
  methods: {
    'chat.rename': {
      input: z.object({ name: z.string().min(1) }),
      output: v.object({ ok: v.boolean() }),
    },
  },
})

const servers: FlumenServer[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (options: Partial<HubOptions<{ id: string; name: string }, typeof contract>> = {}) => {
  const errors: unknown[] = []
  const hub = createHub<{ id: string; name: string }, typeof contract>({
    contract,
    logError: (err) => errors.push(err),
    beforePublish: (request) => {
      if (request.pattern === 'room:{id}') return { text: request.data.text, from: request.user.name }
      return undefined
    },
    ...options,
  })
  const app = createApp<Env>()
  app.use('/ws', async (c, next) => {
    const name = c.req.query('user') ?? 'anon'
    c.set('user', { id: name, name })
    await next()
  })
  app.get('/ws', hub.websocket())
  app.get('/sse', hub.sse())
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  let nextId = 1
  const connect = async (user = 'ann') => {
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws?user=${user}`, 'flumen.v1')
    sockets.push(socket)
    const received: Json[] = []
    socket.on('message', (data: Buffer) => received.push(JSON.parse(data.toString()) as Json))
    await once(socket, 'open')
    const next = async (match: (message: Json) => boolean): Promise<Json> => {
      const deadline = Date.now() + 5_000
      for (;;) {
        const found = received.find(match)
        if (found) {
          received.splice(received.indexOf(found), 1)
          return found
        }
        if (Date.now() > deadline) throw new Error(`no message matched in ${JSON.stringify(received)}`)
        await new Promise((resolve) => socket.once('message', resolve))
      }
    }
    const request = (message: Json): Promise<Json> => {
      const id = nextId++
      socket.send(JSON.stringify({ ...message, id }))
      return next((reply) => reply.id === id)
    }
    return { received, next, request }
  }
  return { hub, connect, errors, server }
}

describe('a hub with a contract', () => {
  it('checks client publishes before the app sees them, and stores what beforePublish made', async () => {
    const { connect } = await start()
    const reader = await connect('bob')
    expect(await reader.request({ type: 'subscribe', topic: 'room:1' })).toMatchObject({ type: 'ack' })
    const writer = await connect('ann')
    expect(await writer.request({ type: 'publish', topic: 'room:1', data: { text: 'hi' } })).toMatchObject({
      type: 'ack',
    })
    expect(await reader.next((m) => m.type === 'message')).toMatchObject({
      topic: 'room:1',
      data: { text: 'hi', from: 'ann' },
    })
    // zod's issues, with their paths, reach the client; nothing is stored or delivered.
    const refused = await writer.request({ type: 'publish', topic: 'room:1', data: { text: '', extra: 1 } })
    expect(refused).toMatchObject({ type: 'error', code: 'BAD_REQUEST' })
    expect(refused.message).toMatch(/^Invalid publish to room:1: text: /)
    expect(refused.issues).toEqual([{ message: expect.any(String), path: ['text'] }])
    // valibot's too, on a topic published as it is.
    expect(
      await writer.request({ type: 'publish', topic: 'doc:a:cursor', data: { x: 1, y: 'far' } }),
    ).toMatchObject({ code: 'BAD_REQUEST', issues: [{ path: ['y'] }] })
    expect(
      await writer.request({ type: 'publish', topic: 'doc:a:cursor', data: { x: 1, y: 2 } }),
    ).toMatchObject({ type: 'ack' })
    const offsets = await writer.request({ type: 'publish', topic: 'room:1', data: { text: 'again' } })
    expect(offsets).toMatchObject({ type: 'ack', offset: 2 })
  })

  it('refuses topics the contract does not name, unless the app opts in', async () => {
    const { connect } = await start()
    const client = await connect()
    for (const topic of ['lobby', 'room:', 'doc:a:cursors', 'ticks2'])
      expect(await client.request({ type: 'subscribe', topic }), topic).toMatchObject({
        code: 'FORBIDDEN',
        message: `${topic} is not a topic of the contract`,
      })
    expect(await client.request({ type: 'publish', topic: 'lobby', data: 1 })).toMatchObject({
      code: 'FORBIDDEN',
    })
    // SSE too: a topic outside the contract is a 403 before any stream.
    const { server } = await start()
    const refusedStream = await fetch(`${server.url}sse?topic=ticks&topic=lobby`)
    expect(refusedStream.status).toBe(403)
    expect(await refusedStream.json()).toMatchObject({ error: { code: 'FORBIDDEN' } })
    const open = await (await start({ allowUnknownTopics: true })).connect()
    expect(await open.request({ type: 'subscribe', topic: 'lobby' })).toMatchObject({ type: 'ack' })
    expect(await open.request({ type: 'publish', topic: 'lobby', data: 'anything' })).toMatchObject({
      type: 'ack',
    })
    // The named topics are still checked.
    expect(await open.request({ type: 'publish', topic: 'ticks', data: 'x' })).toMatchObject({
      code: 'BAD_REQUEST',
    })
  })

  it('types and checks methods both ways: bad input is the caller’s, a bad result the server’s', async () => {
    const { hub, connect, errors } = await start()
    hub.method('chat.rename', (input, { user }) => ({ ok: input.name !== user.name }))
    expect(() => hub.method('chat.rename', () => ({ ok: true }))).toThrow(/already registered/)
    // @ts-expect-error: not a method of the contract
    expect(() => hub.method('other', () => 1)).toThrow(/not a method of the contract/)
    const client = await connect('ann')
    expect(await client.request({ type: 'call', method: 'chat.rename', data: { name: 'bo' } })).toMatchObject(
      {
        type: 'result',
        data: { ok: true },
      },
    )
    expect(await client.request({ type: 'call', method: 'chat.rename', data: { name: 7 } })).toMatchObject({
      code: 'BAD_REQUEST',
      issues: [{ path: ['name'] }],
    })
    const other = await start()
    // @ts-expect-error: the result breaks the contract (ok is a boolean)
    other.hub.method('chat.rename', () => ({ ok: 'yes' }))
    const reply = await (await other.connect()).request({
      type: 'call',
      method: 'chat.rename',
      data: { name: 'x' },
    })
    expect(reply).toEqual({
      type: 'error',
      id: expect.any(Number),
      code: 'INTERNAL',
      message: 'Internal server error',
    })
    expect(String((other.errors[0] as Error).cause)).toMatch(/chat\.rename returned: ok: /)
    expect(errors).toEqual([])
  })

  it('holds server code to the contract: hub.publish, beforePublish and presence', async () => {
    const { hub, connect, errors } = await start({
      beforePublish: (request) => (request.pattern === 'room:{id}' ? { text: request.data.text } : undefined),
    })
    expect(await hub.publish('ticks', { n: 1 })).toBe(1)
    // @ts-expect-error: n is a number
    await expect(hub.publish('ticks', { n: 'one' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringMatching(/^Invalid message for ticks: n: /),
    })
    // @ts-expect-error: not a topic of the contract
    await expect(hub.publish('lobby', 1)).rejects.toMatchObject({ code: 'FORBIDDEN' })
    // A hook that makes a message the contract refuses (no `from`): INTERNAL, logged, not stored.
    const client = await connect()
    expect(await client.request({ type: 'publish', topic: 'room:1', data: { text: 'hi' } })).toEqual({
      type: 'error',
      id: expect.any(Number),
      code: 'INTERNAL',
      message: 'Internal server error',
    })
    expect(String((errors[0] as Error).cause)).toMatch(/beforePublish made for room:1 breaks the contract/)
    expect((await hub.engine.history('room:1')).position.offset).toBe(0)

    // Presence that breaks the room's presence schema refuses the subscribe (the server's bug).
    const odd = await start({ presence: { identify: (user) => ({ id: user.id, info: { id: user.id } }) } })
    const member = await odd.connect()
    expect(await member.request({ type: 'subscribe', topic: 'room:2' })).toMatchObject({ code: 'INTERNAL' })
    expect(await member.request({ type: 'subscribe', topic: 'ticks' })).toMatchObject({ type: 'ack' })
  })
})
