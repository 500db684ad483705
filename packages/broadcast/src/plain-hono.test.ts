import type { FlumenServer } from '@flumen/core'
import { FlumenError, serve } from '@flumen/core'
import type { TestSseClient } from '@flumen/testing'
import { openSse, refusedUpgrade } from '@flumen/testing'
import { Hono } from 'hono'
import { createMiddleware } from 'hono/factory'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createHub } from './index.js'

// The hub's routes in a sub-app of a plain `new Hono()`, behind a middleware of the app's own
// that types `c.var.user`; the hub is told the same type once, with createHub<Member>().
interface Member {
  id: string
  name: string
}

const servers: FlumenServer[] = []
const streams: TestSseClient[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close()
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const member = createMiddleware<{ Variables: { user: Member } }>(async (c, next) => {
  const id = c.req.query('member')
  if (!id)
    throw new FlumenError('UNAUTHORIZED', 'Who are you?', { headers: { 'WWW-Authenticate': 'Member' } })
  c.set('user', { id, name: id.toUpperCase() })
  await next()
})

const start = async () => {
  const hub = createHub<Member>({
    logError: () => {},
    // Typed by createHub<Member>(): no cast to read the member's id.
    authorize: ({ user, topic }) => topic === 'lobby' || topic === `member:${user.id}`,
    presence: { identify: (user) => ({ id: user.id, info: { name: user.name } }) },
  })
  const websocket = hub.websocket()
  const live = new Hono().get('/ws', member, websocket).get('/sse', member, hub.sse({ heartbeatMs: false }))
  const app = new Hono().route('/live', live)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub], logError: () => {} })
  servers.push(server)
  return { hub, websocket, ws: `ws://127.0.0.1:${server.port}/live/ws`, sse: `${server.url}live/sse` }
}

const request = async (socket: WebSocket, message: object): Promise<Record<string, unknown>> => {
  const answer = new Promise<Record<string, unknown>>((resolve) =>
    socket.once('message', (data) => resolve(JSON.parse(String(data)))),
  )
  socket.send(JSON.stringify(message))
  return answer
}

describe('the hub in a plain new Hono()', () => {
  it("refuses an upgrade the app's middleware refuses, with its status, headers and JSON body", async () => {
    const { ws } = await start()
    const refused = await refusedUpgrade(ws, { protocols: ['flumen.v1'] })
    expect(refused.status).toBe(401)
    expect(refused.headers['www-authenticate']).toBe('Member')
    expect(JSON.parse(refused.body)).toEqual({ error: { code: 'UNAUTHORIZED', message: 'Who are you?' } })
  })

  it('gives the hub the typed user of the middleware: peers, authorize and presence see it', async () => {
    const { ws, websocket, hub } = await start()
    const socket = new WebSocket(`${ws}?member=ann`, 'flumen.v1')
    sockets.push(socket)
    await new Promise((resolve) => socket.once('open', resolve))
    expect([...websocket.peers].map((peer) => peer.user.name)).toEqual(['ANN'])
    expect(await request(socket, { type: 'subscribe', id: 1, topic: 'member:ann' })).toMatchObject({
      type: 'ack',
      id: 1,
    })
    expect(await request(socket, { type: 'subscribe', id: 2, topic: 'member:bo' })).toMatchObject({
      type: 'error',
      id: 2,
      code: 'FORBIDDEN',
    })
    expect(await hub.presence('member:ann')).toEqual([{ name: 'ANN' }])
  })

  it('answers SSE refusals as JSON (400 without a topic, 403 for a refused one) and streams the rest', async () => {
    const { sse } = await start()
    const noTopic = await fetch(`${sse}?member=ann`, { headers: { accept: 'text/event-stream' } })
    expect(noTopic.status).toBe(400)
    expect(await noTopic.json()).toEqual({
      error: { code: 'BAD_REQUEST', message: 'Give at least one ?topic=' },
    })
    const refused = await fetch(`${sse}?member=ann&topic=lobby&topic=member:bo`)
    expect(refused.status).toBe(403)
    expect((await refused.json()).error.code).toBe('FORBIDDEN')
    const stream = await openSse(`${sse}?member=ann&topic=lobby`)
    streams.push(stream)
    expect(stream.response.statusCode).toBe(200)
    expect((await stream.next((event) => event.event === 'position')).data).toContain('lobby')
  })
})
