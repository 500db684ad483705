import { once } from 'node:events'
import type { Hub } from '@flumen/broadcast'
import { createHub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { InspectorOptions } from './index.js'
import { inspector } from './index.js'

type User = { id: string; name: string; token: string }

const servers: FlumenServer[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (options: Partial<InspectorOptions<User>> = {}) => {
  const hub = createHub<User>()
  const app = createApp()
  app.use('/ws', async (c, next) => {
    const name = c.req.query('user') ?? 'anon'
    c.set('user' as never, { id: `u-${name}`, name, token: 'secret-token' } as never)
    await next()
  })
  app.get('/ws', hub.websocket())
  app.route('/admin/inspector', inspector({ hub, ...options }))
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  const base = `http://127.0.0.1:${server.port}/admin/inspector`
  return { hub, server, base }
}

const connect = async (port: number, user: string, topic: string) => {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?user=${user}`, 'flumen.v1')
  sockets.push(socket)
  await once(socket, 'open')
  socket.send(JSON.stringify({ type: 'subscribe', id: 1, topic }))
  await once(socket, 'message')
  return socket
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })

describe('inspector', () => {
  it('shows connections (without secrets), topics, presence and the newest messages of a topic', async () => {
    const { hub, server, base } = await start({ recentMessages: 3 })
    await connect(server.port, 'ann', 'room:a/b')
    await connect(server.port, 'bob', 'room:a/b')
    for (let i = 1; i <= 5; i++) await hub.publish('room:a/b', { n: i })

    const overview = await (await fetch(`${base}/api/overview`)).json()
    expect(overview).toMatchObject({ readOnly: true, stats: { connections: 2, topics: 1, published: 5 } })
    const { total, connections } = await (await fetch(`${base}/api/connections`)).json()
    expect(total).toBe(2)
    expect(connections.map((c: { user: unknown }) => c.user)).toEqual(
      expect.arrayContaining([
        { id: 'u-ann', name: 'ann' },
        { id: 'u-bob', name: 'bob' },
      ]),
    )
    expect(JSON.stringify(connections)).not.toContain('secret-token')
    expect(connections[0]).toMatchObject({ transport: 'ws', topics: ['room:a/b'], bufferedAmount: 0 })
    expect(await (await fetch(`${base}/api/topics`)).json()).toEqual({
      total: 1,
      topics: [{ name: 'room:a/b', subscribers: 2, recovering: 0, presence: 2, offset: 5, historyLength: 5 }],
    })
    const topic = await (await fetch(`${base}/api/topics/${encodeURIComponent('room:a/b')}`)).json()
    expect(topic).toMatchObject({
      name: 'room:a/b',
      position: { offset: 5 },
      historyLength: 5,
      subscribers: 2,
    })
    expect(topic.presence).toHaveLength(2)
    expect(topic.messages).toEqual([
      { offset: 3, data: { n: 3 } },
      { offset: 4, data: { n: 4 } },
      { offset: 5, data: { n: 5 } },
    ])
    const page = await fetch(base)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(await page.text()).toContain('src="/admin/inspector/inspector.js"')
  })

  it('is read-only by default: actions are refused, nothing changes', async () => {
    const { hub, server, base } = await start()
    await connect(server.port, 'ann', 'news')
    const [connection] = hub.inspect().connections
    const refused = await post(`${base}/api/connections/${connection!.id}/disconnect`, {})
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({
      error: { code: 'FORBIDDEN', message: 'The inspector is read-only' },
    })
    expect((await post(`${base}/api/topics/news/messages`, { data: 1 })).status).toBe(403)
    expect(hub.inspect().connections).toHaveLength(1)
    expect(hub.stats.published).toBe(0)
  })

  it('with readOnly false, closes a connection and publishes; refuses cross-site and non-JSON requests', async () => {
    const { hub, server, base } = await start({ readOnly: false })
    const socket = await connect(server.port, 'ann', 'news')
    const [connection] = hub.inspect().connections
    expect((await post(`${base}/api/topics/news/messages`, {}, {})).status).toBe(400)
    const published = await post(`${base}/api/topics/news/messages`, { data: { text: 'from ops' } })
    expect(await published.json()).toEqual({ offset: 1 })
    const [message] = (await once(socket, 'message')) as [Buffer]
    expect(JSON.parse(message.toString())).toMatchObject({ type: 'message', data: { text: 'from ops' } })

    const form = await fetch(`${base}/api/connections/${connection!.id}/disconnect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'x=1',
    })
    expect(form.status).toBe(415)
    const crossSite = await post(
      `${base}/api/connections/${connection!.id}/disconnect`,
      {},
      { origin: 'https://evil.example' },
    )
    expect(crossSite.status).toBe(403)
    expect(hub.inspect().connections).toHaveLength(1)
    const crossSiteFetch = await post(
      `${base}/api/topics/news/messages`,
      { data: 2 },
      { 'sec-fetch-site': 'cross-site' },
    )
    expect(crossSiteFetch.status).toBe(403)
    // Behind a TLS proxy the public origin is not this server's URL: the browser's own verdict counts.
    const proxied = await post(
      `${base}/api/topics/news/messages`,
      { data: 3 },
      { origin: 'https://rooms.example', 'sec-fetch-site': 'same-origin' },
    )
    expect(await proxied.json()).toEqual({ offset: 2 })
    const tooLarge = await post(`${base}/api/topics/news/messages`, { data: 'x'.repeat(1_048_577) })
    expect(tooLarge.status).toBe(413)
    expect(await tooLarge.json()).toMatchObject({ error: { code: 'TOO_LARGE' } })

    expect((await post(`${base}/api/connections/nobody/disconnect`, {})).status).toBe(404)
    const closed = once(socket, 'close')
    expect((await post(`${base}/api/connections/${connection!.id}/disconnect`, {})).status).toBe(204)
    expect(((await closed) as [number])[0]).toBe(1008)
  })

  it('answers a bad topic with 400, mounts in a plain Hono app, and refuses options that cannot work', async () => {
    const hub = createHub()
    const app = new Hono().route('/inspect', inspector({ hub: hub as Hub }))
    expect((await app.request('/inspect/api/topics/has%0Acontrol')).status).toBe(400)
    expect((await app.request('/inspect/api/overview')).status).toBe(200)
    expect(() => inspector({ hub: {} as never })).toThrow('inspector: hub must come from createHub()')
    expect(() => inspector({ hub, readOnly: 'no' as never })).toThrow('inspector: readOnly')
    expect(() => inspector({ hub, recentMessages: 5000 })).toThrow('inspector: recentMessages')
    expect(() => inspector({ hub, maxConnections: 0 })).toThrow('maxConnections')
    expect(() => inspector({ hub, maxTopics: 1.5 })).toThrow('maxTopics')
    await hub.engine.close()
  })
})
