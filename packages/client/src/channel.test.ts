import type { AuthEnv, AuthUser } from '@flumen/auth'
import { auth, jwt } from '@flumen/auth'
import type { Engine, EngineListener, Hub } from '@flumen/broadcast'
import { createHub, memoryEngine } from '@flumen/broadcast'
import type { Authorizer, FlumenServer } from '@flumen/core'
import { createApp, FlumenError, serve } from '@flumen/core'
import type { WsPeer } from '@flumen/ws'
import { SignJWT } from 'jose'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Client, ClientOptions, ClientState } from './node.js'
import { createClient, FlumenClientError, fullJitter } from './node.js'

const secret = 'client-test-secret-that-is-32-bytes-long'
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Started {
  hub: Hub<AuthUser>
  server: FlumenServer
  url: string
  /** Server-side peers of the ws route, to drop them. */
  peers(): WsPeer<AuthUser>[]
  restart(): Promise<void>
}

const start = async (
  options: {
    withAuth?: boolean
    port?: number
    engine?: () => Engine
    authorize?: Authorizer<AuthUser>
  } = {},
): Promise<Started> => {
  let hub!: Hub<AuthUser>
  let server!: FlumenServer
  let route!: ReturnType<Hub<AuthUser>['websocket']>
  const boot = async (port: number): Promise<void> => {
    const authn = auth({ strategies: [jwt({ secret, clockToleranceSec: 0 })] })
    hub = createHub<AuthUser>({
      ...(options.withAuth && { authenticate: authn.verifyToken }),
      ...(options.authorize && { authorize: options.authorize }),
      ...(options.engine ? { engine: options.engine() } : { history: { size: 10_000 } }),
      logError: () => {},
    })
    hub.method('add', (data) => {
      const { a, b } = data as { a: number; b: number }
      return a + b
    })
    hub.method('slow', () => new Promise((resolve) => setTimeout(resolve, 2000)))
    const app = createApp<AuthEnv>({ logError: () => {} })
    app.use('/ws', async (c, next) => {
      if (!options.withAuth)
        c.set('user', { id: c.req.query('user') ?? 'anon', name: c.req.query('user') ?? 'anon' })
      await next()
    })
    if (options.withAuth) app.use('/ws', authn)
    const websocket = hub.websocket({ rateLimit: { messagesPerSecond: 10_000, burst: 10_000 } })
    route = websocket
    app.get('/ws', websocket)
    server = await serve(app, { port, hostname: '127.0.0.1', plugins: [hub] })
  }
  await boot(options.port ?? 0)
  const started: Started = {
    get hub() {
      return hub
    },
    get server() {
      return server
    },
    url: `ws://127.0.0.1:${server.port}/ws`,
    peers: () => [...route.peers].filter((peer) => peer.ws.readyState === 1),
    restart: async () => {
      const port = server.port
      await server.close({ timeoutMs: 100 })
      await boot(port)
    },
  }
  cleanups.push(() => server.close({ timeoutMs: 200 }))
  return started
}

const client = (options: ClientOptions): Client => {
  const created = createClient({ retryDelayMs: () => 20, keepAlive: false, ...options })
  cleanups.push(() => created.close())
  return created
}

const waitFor = async (check: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const states = (c: Client): ClientState[] => {
  const seen: ClientState[] = []
  c.on('state', (state) => seen.push(state))
  return seen
}

const token = (sub: string, ttlSec: number): Promise<string> =>
  new SignJWT({ sub, exp: Math.floor(Date.now() / 1000) + ttlSec })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret))

describe('createClient', () => {
  it('subscribes, publishes with acks, calls methods and sees presence', async () => {
    const { url } = await start()
    const alice = client({ url: `${url}?user=alice` })
    const bob = client({ url: `${url}?user=bob` })
    const got: unknown[] = []
    const sub = bob.subscribe<{ text: string }>('room:1', (data, meta) => got.push([data.text, meta.offset]))
    expect(await sub.ready).toEqual({ recovered: true })
    await alice.subscribe('room:1', () => {}).ready
    await waitFor(() => bob.presence('room:1').length === 2)
    expect(bob.presence('room:1')).toEqual(
      expect.arrayContaining([
        { id: 'alice', name: 'alice' },
        { id: 'bob', name: 'bob' },
      ]),
    )
    expect(await alice.publish('room:1', { text: 'hi' })).toBe(1)
    expect(await alice.publish('room:1', { text: 'again' })).toBe(2)
    await waitFor(() => got.length === 2)
    expect(got).toEqual([
      ['hi', 1],
      ['again', 2],
    ])
    expect(await alice.call('add', { a: 2, b: 3 })).toBe(5)
    await expect(alice.call('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await expect(alice.call('slow', undefined, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'TIMEOUT' })
    await expect(alice.publish('', 1)).rejects.toMatchObject({ code: 'BAD_REQUEST' })
    await alice.close()
    await waitFor(() => bob.presence('room:1').length === 1)
    expect(alice.state).toBe('closed')
    await expect(alice.publish('room:1', 1)).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('reconnects after the server drops the socket and resubscribes where it left off', async () => {
    const started = await start()
    const c = client({ url: started.url })
    const seen = states(c)
    const got: number[] = []
    await c.subscribe<number>('t', (n) => got.push(n)).ready
    await started.hub.publish('t', 1)
    await waitFor(() => got.length === 1)
    for (const peer of started.peers()) peer.close(1011, 'dropped')
    await waitFor(() => seen.includes('reconnecting'))
    await started.hub.publish('t', 2) // while the client is away
    await waitFor(() => c.state === 'open' && got.length === 2)
    await started.hub.publish('t', 3)
    await waitFor(() => got.length === 3)
    expect(got).toEqual([1, 2, 3])
    expect(seen).toEqual(['open', 'reconnecting', 'open'])
  })

  it('recovers across a server restart on the same port, reporting the lost history', async () => {
    const started = await start()
    const c = client({ url: started.url })
    const resets: string[] = []
    c.on('reset', ({ topic }) => resets.push(topic))
    const got: number[] = []
    await c.subscribe<number>('t', (n) => got.push(n)).ready
    await started.hub.publish('t', 1)
    await waitFor(() => got.length === 1)
    await started.restart()
    await waitFor(() => resets.length === 1 && c.state === 'open')
    expect(resets).toEqual(['t'])
    await started.hub.publish('t', 2)
    await waitFor(() => got.length === 2)
    expect(got).toEqual([1, 2])
  })

  it('asks again, with backoff, for a topic the server refused for a passing reason (UNAVAILABLE)', async () => {
    // An engine whose storage is down for the first three history reads (Redis restarting, say).
    let outages = 3
    const flaky = (): Engine => {
      const engine = memoryEngine()
      return {
        ...engine,
        attach: (listener) => engine.attach(listener),
        history: async (topic, since) => {
          if (outages-- > 0) throw new FlumenError('UNAVAILABLE', 'Redis is unavailable')
          return engine.history(topic, since)
        },
      }
    }
    const started = await start({ engine: flaky })
    const c = client({ url: started.url })
    const got: number[] = []
    const errors: string[] = []
    c.on('error', (err) => errors.push(err.code))
    const sub = c.subscribe<number>('t', (n) => got.push(n))
    expect(await sub.ready).toEqual({ recovered: true })
    expect(outages).toBeLessThan(0)
    await started.hub.publish('t', 1)
    await waitFor(() => got.length === 1)
    expect(errors).toEqual([])
  })

  it('reports a reset when a live topic moves to another epoch (the server lost its history)', async () => {
    // An engine whose epoch changes under a live subscriber, as after Redis lost writes.
    let epochSuffix = ''
    const moving = (): Engine => {
      const engine = memoryEngine()
      return {
        ...engine,
        attach: (listener: EngineListener) =>
          engine.attach({
            ...listener,
            onMessage: (message) => listener.onMessage({ ...message, epoch: message.epoch + epochSuffix }),
          }),
      }
    }
    const started = await start({ engine: moving })
    const c = client({ url: started.url })
    const resets: { epoch: string; offset: number }[] = []
    c.on('reset', ({ epoch, offset }) => resets.push({ epoch, offset }))
    const got: number[] = []
    await c.subscribe<number>('t', (n) => got.push(n)).ready
    await started.hub.publish('t', 1)
    await waitFor(() => got.length === 1)
    epochSuffix = '-after-loss'
    await started.hub.publish('t', 2)
    await waitFor(() => got.length === 2)
    expect(resets).toEqual([{ epoch: expect.stringMatching(/-after-loss$/), offset: 1 }])
  })

  it('loses and repeats nothing across 20 forced reconnects while the server keeps publishing', async () => {
    const started = await start()
    const c = client({ url: started.url, retryDelayMs: () => 5 })
    const seen = states(c)
    const got: number[] = []
    await c.subscribe<number>('stream', (n) => got.push(n)).ready
    let published = 0
    let publishing = true
    const publisher = (async () => {
      while (publishing) {
        await started.hub.publish('stream', published++)
        if (published % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
      }
    })()
    for (let i = 0; i < 20; i++) {
      await waitFor(() => c.state === 'open' && started.peers().length > 0)
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20))
      const peer = started.peers()[0]!
      // Half clean closes, half cut sockets (no close frame).
      if (i % 2) peer.close(1011, 'drop')
      else peer.ws.terminate()
      await waitFor(() => seen.filter((state) => state === 'reconnecting').length === i + 1)
    }
    await waitFor(() => c.state === 'open')
    publishing = false
    await publisher
    await waitFor(() => got.length >= published, 10_000)
    expect(got.length).toBe(published)
    expect(got).toEqual(Array.from({ length: published }, (_, i) => i))
    expect(published).toBeGreaterThan(100)
  }, 30_000)

  it('refreshes its token before expiry and stays connected past it', async () => {
    const started = await start({ withAuth: true })
    const issued: number[] = []
    const c = client({
      url: started.url,
      token: async () => {
        issued.push(Date.now())
        return token('alice', 2)
      },
      refreshBeforeExpiryMs: 1000,
    })
    const seen = states(c)
    await waitFor(() => c.state === 'open')
    const firstExpiry = Math.floor(issued[0]! / 1000) * 1000 + 2000
    // Past the first token's expiry (when the server would close with 4001), still the same connection.
    await waitFor(() => Date.now() > firstExpiry + 500, 5_000)
    expect(issued.length).toBeGreaterThanOrEqual(2)
    expect(seen).toEqual(['open'])
    expect(await c.publish('x', 1)).toBe(1)
  }, 10_000)

  it('does not reconnect after 4001 unless the token function gives a new token', async () => {
    const started = await start({ withAuth: true })
    const fixed = await token('alice', 1)
    const stuck = client({ url: started.url, token: fixed })
    await waitFor(() => stuck.state === 'open')
    const ended: unknown[] = []
    stuck.on('state', (state, detail) => ended.push([state, detail.close?.code]))
    await waitFor(() => stuck.state === 'closed', 4_000)
    expect(ended).toEqual([['closed', 4001]])

    // A refused handshake with a static token: closed, no retry storm.
    const refused = client({ url: started.url, token: 'not-a-token' })
    await waitFor(() => refused.state === 'closed')

    // A token function that gives a new token reconnects.
    let calls = 0
    const renewing = client({
      url: started.url,
      token: async () => token('bob', ++calls === 1 ? 1 : 60),
      refreshBeforeExpiryMs: 0,
    })
    const seen = states(renewing)
    await waitFor(() => seen.filter((s) => s === 'open').length === 2, 5_000)
    expect(renewing.state).toBe('open')
  }, 10_000)

  it('queues publishes while offline and sends them in order on reconnect', async () => {
    const started = await start()
    const port = started.server.port
    const c = client({ url: started.url })
    await waitFor(() => c.state === 'open')
    await started.server.close({ timeoutMs: 100 })
    await waitFor(() => c.state === 'reconnecting')
    const acks = [c.publish('q', 'a'), c.publish('q', 'b'), c.publish('q', 'c')]
    const restarted = await start({ port })
    expect(await Promise.all(acks)).toEqual([1, 2, 3])
    const { epoch } = (await restarted.hub.engine.history('q', undefined)).position
    const history = await restarted.hub.engine.history('q', { epoch, offset: 0 })
    expect(history.messages.map((m) => JSON.parse(m.data))).toEqual(['a', 'b', 'c'])

    const small = client({ url: 'ws://127.0.0.1:1/ws', maxOfflineQueue: 2 })
    const queued = [small.publish('q', 1), small.publish('q', 2)]
    await expect(small.publish('q', 3)).rejects.toMatchObject({ code: 'OFFLINE_QUEUE_FULL' })
    await small.close()
    for (const pending of queued) await expect(pending).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('publishes volatile messages to who is there: handlers see them unpositioned, offline ones are dropped', async () => {
    const started = await start()
    const alice = client({ url: `${started.url}?user=alice` })
    const bob = client({ url: `${started.url}?user=bob` })
    const got: unknown[] = []
    const sub = bob.subscribe<string>('room:v', (data, meta) => got.push([data, meta]), { delta: true })
    await sub.ready
    await alice.subscribe('room:v', () => {}).ready
    expect(await alice.publish('room:v', 'stored 1')).toBe(1)
    expect(await alice.publish('room:v', 'typing', { volatile: true })).toBe(true)
    expect(await alice.publish('room:v', 'stored 2')).toBe(2)
    await waitFor(() => got.length === 3)
    expect(got).toEqual([
      ['stored 1', expect.objectContaining({ offset: 1, volatile: false })],
      ['typing', { topic: 'room:v', volatile: true }],
      ['stored 2', expect.objectContaining({ offset: 2, volatile: false })],
    ])
    expect(sub.position?.offset).toBe(2)

    // Offline: dropped at once, never sent later.
    await started.server.close({ timeoutMs: 100 })
    await waitFor(() => alice.state === 'reconnecting' && bob.state === 'reconnecting')
    expect(await alice.publish('room:v', 'while away', { volatile: true })).toBe(false)
    await started.restart()
    await waitFor(() => alice.state === 'open' && bob.state === 'open')
    await alice.subscribe('room:v', () => {}).ready
    await bob.subscribe('room:v', () => {}).ready
    expect(await alice.publish('room:v', 'back')).toBe(1)
    await waitFor(() => got.length === 4)
    expect(got.map((entry) => (entry as unknown[])[0])).toEqual(['stored 1', 'typing', 'stored 2', 'back'])
  })

  it('sends a publish whose answer the drop lost again, and the server stores it once', async () => {
    // Publishes are held at authorization until the test lets them go: the first one is stored
    // after its connection is gone, so its ack is lost on the way.
    let release: (() => void) | undefined
    let held = 0
    const started = await start({
      authorize: async ({ action }) => {
        if (action !== 'publish') return true
        held++
        if (held === 1) await new Promise<void>((resolve) => (release = resolve))
        return true
      },
    })
    const reader = client({ url: `${started.url}?user=reader` })
    const received: unknown[] = []
    await reader.subscribe('once', (data) => received.push(data)).ready
    const writer = client({ url: `${started.url}?user=writer` })
    await waitFor(() => writer.state === 'open' && started.peers().length === 2)
    const ack = writer.publish('once', 'only once')
    await waitFor(() => release !== undefined)
    for (const peer of started.peers()) if (peer.user.id === 'writer') peer.ws.terminate()
    await waitFor(() => writer.state === 'reconnecting')
    release!() // stored now, answered to a connection that is gone
    await waitFor(() => writer.state === 'open')
    expect(await ack).toBe(1)
    await waitFor(() => received.length > 0)
    await started.hub.publish('once', 'after') // a duplicate would have come before it
    await waitFor(() => received.length >= 2)
    expect(received).toEqual(['only once', 'after'])
    const { position } = await started.hub.engine.history('once')
    expect(position.offset).toBe(2)
  })

  it('waits full-jitter backoff delays within bounds between attempts', async () => {
    let seed = 42
    const random = (): number => {
      seed = (seed * 16807) % 2147483647
      return (seed - 1) / 2147483646
    }
    const delay = fullJitter({ baseDelayMs: 100, maxDelayMs: 1000, random })
    for (let attempt = 0; attempt < 12; attempt++) {
      const bound = Math.min(1000, 100 * 2 ** attempt)
      for (let i = 0; i < 50; i++) {
        const d = delay(attempt)
        expect(d).toBeGreaterThanOrEqual(0)
        expect(d).toBeLessThan(bound)
      }
    }
    expect(() => fullJitter({ baseDelayMs: 0 })).toThrow()
    // The client asks for attempt 0, 1, 2… while the server is down, and waits that long.
    const attempts: number[] = []
    const at: number[] = []
    const c = createClient({
      url: 'ws://127.0.0.1:1/ws',
      keepAlive: false,
      retryDelayMs: (attempt) => {
        attempts.push(attempt)
        at.push(Date.now())
        return 50 * (attempt + 1)
      },
    })
    await waitFor(() => attempts.length >= 4)
    await c.close()
    expect(attempts.slice(0, 4)).toEqual([0, 1, 2, 3])
    for (let i = 1; i < 4; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(50 * i - 5)
  })

  it('detects a dead connection with app-level pings and reconnects', async () => {
    const started = await start()
    const c = client({ url: started.url, keepAlive: { intervalMs: 100, pongTimeoutMs: 100 } })
    const seen = states(c)
    await waitFor(() => c.state === 'open' && started.peers().length === 1)
    // Freeze the server side: it stops reading, so pings go unanswered.
    // `ws` keeps its TCP socket private.
    ;(Reflect.get(started.peers()[0]!.ws, '_socket') as { pause(): void }).pause()
    await waitFor(() => seen.includes('reconnecting'), 3_000)
    await waitFor(() => c.state === 'open')
  })

  it('shuts down cleanly: no timers or sockets left', async () => {
    const started = await start()
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const c = createClient({ url: started.url, token: async () => token('alice', 600) })
    await waitFor(() => c.state === 'open')
    const sub = c.subscribe('t', () => {})
    await sub.ready
    const pendingCall = c.call('slow').catch((err: unknown) => err)
    await c.close()
    expect(await pendingCall).toBeInstanceOf(FlumenClientError)
    expect(c.state).toBe('closed')
    await vi.waitFor(() => expect(started.hub.stats.peers).toBe(0))
    await vi.waitFor(() =>
      expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(
        before,
      ),
    )
  })

  it('validates its options', () => {
    expect(() => createClient({ url: 'http://x' })).toThrow(/ws:\/\//)
  })
})
