import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import type { ProtocolClient } from '@flumen/testing'
import { openProtocolClient } from '@flumen/testing'
import { afterEach, describe, expect, it } from 'vitest'
import type { EngineMessage, Hub, HubOptions, PresenceChange, VolatileMessage } from './index.js'
import { createHub } from './index.js'

type Env = { Bindings: FlumenBindings; Variables: { user: unknown } }

const servers: FlumenServer[] = []
const clients: ProtocolClient[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (options: HubOptions = {}): Promise<{ hub: Hub; url: string }> => {
  const hub = createHub({ logError: () => {}, ...options })
  const app = createApp<Env>()
  app.use('/ws', async (c, next) => {
    const name = c.req.query('user')
    if (name) c.set('user', { id: name, name })
    await next()
  })
  app.get('/ws', hub.websocket())
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  return { hub, url: `ws://127.0.0.1:${server.port}/ws` }
}

const connect = async (url: string): Promise<ProtocolClient> => {
  const client = await openProtocolClient(url)
  clients.push(client)
  return client
}

const until = async (check: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('hub.listen: server code reads a topic', () => {
  it('gets the messages after since, then live ones, in order, with no gap or duplicate', async () => {
    const { hub } = await start()
    for (let i = 1; i <= 3; i++) await hub.publish('doc:a', { n: i })
    const seen: EngineMessage[] = []
    // Publishes racing the history read: each still arrives exactly once.
    const racing = Promise.all([hub.publish('doc:a', { n: 4 }), hub.publish('doc:a', { n: 5 })])
    const listening = await hub.listen(
      'doc:a',
      { onMessage: (m) => seen.push(m) },
      {
        since: { epoch: (await hub.engine.history('doc:a')).position.epoch, offset: 1 },
      },
    )
    await racing
    await hub.publish('doc:a', { n: 6 })
    await until(() => seen.length >= 5)
    expect(listening.recovered).toBe(true)
    expect(seen.map((m) => JSON.parse(m.data).n)).toEqual([2, 3, 4, 5, 6])
    expect(seen.map((m) => m.offset)).toEqual([2, 3, 4, 5, 6])
    listening.close()
    await hub.publish('doc:a', { n: 7 })
    expect(seen).toHaveLength(5)
    expect(hub.stats.topics).toBe(0) // the node let the topic go
  })

  it('gets volatile messages and presence per connection, outside presence itself', async () => {
    const { hub, url } = await start()
    const volatile: VolatileMessage[] = []
    const presence: PresenceChange[] = []
    const listening = await hub.listen('doc:b', {
      onMessage: () => {},
      onVolatile: (m) => volatile.push(m),
      onPresence: (change) => presence.push(change),
    })
    const client = await connect(`${url}?user=ada`)
    expect(await client.request({ type: 'subscribe', topic: 'doc:b' })).toMatchObject({ type: 'ack' })
    // The listener is nobody in presence: ada is alone.
    expect(await hub.presence('doc:b')).toEqual([{ id: 'ada', name: 'ada' }])
    await hub.publish('doc:b', { cursor: 3 }, { volatile: true })
    await until(() => volatile.length === 1 && presence.length === 1)
    expect(JSON.parse(volatile[0]!.data)).toEqual({ cursor: 3 })
    const connectionId = presence[0]!.join![0]!.connectionId
    client.socket.close()
    await until(() => presence.length === 2)
    expect(presence[1]!.leave).toEqual([expect.objectContaining({ connectionId, userId: 'ada' })])
    listening.close()
  })

  it('logs what a listener throws and goes on delivering', async () => {
    const logged: unknown[] = []
    const { hub } = await start({ logError: (err) => logged.push(err) })
    const seen: number[] = []
    const listening = await hub.listen('doc:c', {
      onMessage: (m) => {
        seen.push(m.offset)
        if (m.offset === 1) throw new Error('listener bug')
      },
    })
    await hub.publish('doc:c', 1)
    await hub.publish('doc:c', 2)
    await until(() => seen.length === 2)
    expect(logged).toEqual([new Error('listener bug')])
    listening.close()
  })
})

describe('hub.own: a plugin decides for its topics and methods', () => {
  it('its authorizer replaces the hub’s for the names it owns, and gives them back', async () => {
    const { hub, url } = await start({ authorize: () => false })
    const give = hub.own('doc:', ({ action }) => action === 'subscribe')
    hub.own('plugin.', () => true)
    hub.method('plugin.hello', () => 'hi')
    const client = await connect(`${url}?user=ada`)
    expect(await client.request({ type: 'subscribe', topic: 'doc:x' })).toMatchObject({ type: 'ack' })
    expect(await client.request({ type: 'publish', topic: 'doc:x', data: 1 })).toMatchObject({
      code: 'FORBIDDEN',
    })
    expect(await client.request({ type: 'subscribe', topic: 'room:x' })).toMatchObject({ code: 'FORBIDDEN' })
    expect(await client.request({ type: 'call', method: 'plugin.hello' })).toMatchObject({ data: 'hi' })
    give()
    expect(await client.request({ type: 'subscribe', topic: 'doc:y' })).toMatchObject({ code: 'FORBIDDEN' })
    expect(() => hub.own('plugin.x', () => true)).toThrow(/overlaps plugin\./)
    expect(() => hub.own('', () => true)).toThrow(/non-empty/)
  })
})
