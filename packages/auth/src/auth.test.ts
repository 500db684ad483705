import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHub, type Hub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import type { TestSseClient } from '@flumen/testing'
import { leakCheck, openSse, refusedUpgrade } from '@flumen/testing'
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import type { AuthMiddleware, AuthUser } from './index.js'
import { apiKey, auth, jwt, sessionCookie, topicRules } from './index.js'

const secret = 'a-test-secret-that-is-at-least-32-bytes-long'
const servers: (FlumenServer | Server)[] = []
const sockets: WebSocket[] = []
const streams: TestSseClient[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  for (const stream of streams.splice(0)) stream.close()
  await Promise.all(
    servers
      .splice(0)
      .map((server) =>
        'port' in server && typeof server.close === 'function' && 'state' in server
          ? server.close({ timeoutMs: 200 })
          : new Promise((resolve) => (server as Server).close(resolve)),
      ),
  )
})

let rsa: Awaited<ReturnType<typeof generateKeyPair>>
let rsaPem: string
let es1: Awaited<ReturnType<typeof generateKeyPair>>
let es2: Awaited<ReturnType<typeof generateKeyPair>>
beforeAll(async () => {
  rsa = await generateKeyPair('RS256')
  rsaPem = await exportSPKI(rsa.publicKey)
  es1 = await generateKeyPair('ES256')
  es2 = await generateKeyPair('ES256')
})

const now = (): number => Math.floor(Date.now() / 1000)
const hs = (
  claims: Record<string, unknown>,
  key: string | Uint8Array = secret,
  alg = 'HS256',
): Promise<string> =>
  new SignJWT(claims)
    .setProtectedHeader({ alg })
    .sign(typeof key === 'string' ? new TextEncoder().encode(key) : key)
const valid = (sub = 'alice', extra: Record<string, unknown> = {}): Promise<string> =>
  hs({ sub, name: sub, exp: now() + 600, iss: 'flumen-test', aud: 'flumen', ...extra })

/** The JWKS endpoint of an identity provider whose keys can rotate. */
const startJwks = async (): Promise<{ url: string; serve(keys: JWK[]): void }> => {
  let keys: JWK[] = []
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys }))
  })
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
    serve: (next) => {
      keys = next
    },
  }
}

const jwk = async (key: CryptoKey, kid: string): Promise<JWK> => ({
  ...(await exportJWK(key)),
  kid,
  alg: 'ES256',
})
const es = (key: CryptoKey, kid: string, claims: Record<string, unknown> = {}): Promise<string> =>
  new SignJWT({ sub: 'erin', exp: now() + 600, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid })
    .sign(key)

interface Started {
  server: FlumenServer
  hub: Hub<AuthUser>
  authn: AuthMiddleware
  session: ReturnType<typeof sessionCookie>
  http(path: string, init?: RequestInit): Promise<Response>
  /** The HTTP status of a refused upgrade; fails if the socket opened. */
  refusedUpgrade(headers?: Record<string, string>, protocols?: string[]): Promise<number>
  open(headers?: Record<string, string>, protocols?: string[]): Promise<WebSocket>
  sse(headers?: Record<string, string>, query?: string): Promise<TestSseClient>
}

const start = async (options: { jwksUrl?: string; queryToken?: boolean } = {}): Promise<Started> => {
  const session = sessionCookie({ secret: `${secret}-cookies` })
  const strategies = [
    jwt({ secret, issuer: 'flumen-test', audience: 'flumen', clockToleranceSec: 0 }),
    jwt({ publicKey: rsaPem, algorithms: ['RS256'], clockToleranceSec: 0 }),
    session,
    apiKey({ keys: { 'k-0123456789abcdef': { id: 'robot', roles: ['admin'] } } }),
  ]
  if (options.jwksUrl)
    strategies.push(
      jwt({ jwks: { url: options.jwksUrl, cooldownMs: 0 }, algorithms: ['ES256'], clockToleranceSec: 0 }),
    )
  const authn = auth({
    strategies,
    allowedOrigins: ['https://app.example'],
    ...(options.queryToken !== undefined && { queryToken: options.queryToken }),
  })
  const hub = createHub({
    presence: false,
    authenticate: authn.verifyToken,
    authorize: topicRules({
      'room:*': ['subscribe', 'publish'],
      'user:{id}': ['subscribe'],
      dashboard: ['subscribe'],
      'admin:*': { actions: ['subscribe', 'publish'], roles: ['admin'] },
    }),
    logError: () => {},
  })
  const app = createApp({ logError: () => {} })
  app.post('/session', (c) => {
    session.issue(c, { id: 'carol', name: 'carol' })
    return c.json({ ok: true })
  })
  app.post('/logout', async (c) => {
    await session.revoke(c)
    return c.body(null, 204)
  })
  app.get('/api/me', authn, (c) => c.json(c.var.user))
  app.post('/api/things', authn, (c) => c.json({ created: true, by: c.var.user.id }, 201))
  app.get('/ws', authn, hub.websocket())
  app.get('/sse', authn, hub.sse({ heartbeatMs: false }))
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  const wsUrl = `ws://127.0.0.1:${server.port}/ws`
  return {
    server,
    hub,
    authn,
    session,
    http: (path, init) => fetch(new URL(path, server.url), init),
    refusedUpgrade: async (headers = {}, protocols = ['flumen.v1']) =>
      (await refusedUpgrade(wsUrl, { headers, protocols })).status,
    open: async (headers = {}, protocols = ['flumen.v1']) => {
      const socket = new WebSocket(wsUrl, protocols, { headers })
      sockets.push(socket)
      await once(socket, 'open')
      return socket
    },
    sse: async (headers = {}, query = 'topic=room:1') => {
      const stream = await openSse(`${server.url}sse?${query}`, headers)
      streams.push(stream)
      return stream
    },
  }
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/** Sends a protocol request and waits for its answer. */
const request = async (
  socket: WebSocket,
  message: Record<string, unknown>,
): Promise<Record<string, unknown>> => {
  const id = Math.floor(Math.random() * 1e9)
  socket.send(JSON.stringify({ ...message, id }))
  for (;;) {
    const [data] = (await once(socket, 'message')) as [Buffer]
    const reply = JSON.parse(data.toString()) as Record<string, unknown>
    if (reply.id === id) return reply
  }
}

describe('auth: refused credentials, every transport', () => {
  const badTokens: [string, () => Promise<string>][] = [
    ['malformed', async () => 'not-a-jwt'],
    ['garbage in three parts', async () => 'aaa.bbb.ccc'],
    ['expired', () => valid('alice', { exp: now() - 10 })],
    ['not yet valid', () => valid('alice', { nbf: now() + 600 })],
    ['wrong audience', () => valid('alice', { aud: 'someone-else' })],
    ['wrong issuer', () => valid('alice', { iss: 'evil' })],
    ['without exp', () => hs({ sub: 'alice', iss: 'flumen-test', aud: 'flumen' })],
    [
      'signed with another secret',
      () => hs({ sub: 'alice', exp: now() + 60 }, 'another-secret-that-is-32-bytes-long!!'),
    ],
    [
      'alg none',
      async () => {
        const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
        return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: 'alice', exp: now() + 60, iss: 'flumen-test', aud: 'flumen' })}.`
      },
    ],
    // The RSA public key is public: signing HS256 with it must not pass as RS256.
    ['HS/RS confusion', () => hs({ sub: 'alice', exp: now() + 60 }, new TextEncoder().encode(rsaPem))],
  ]

  it.each(badTokens)('%s → 401 over HTTP, WS (never an upgrade) and SSE', async (_name, make) => {
    const { http, refusedUpgrade, sse, server } = await start()
    const check = await leakCheck({ emitters: [server.node], servers: [server.node] })
    const token = await make()
    const response = await http('/api/me', { headers: bearer(token) })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="flumen", error="invalid_token"')
    const body = await response.text()
    expect(JSON.parse(body)).toEqual({ error: { code: 'UNAUTHORIZED', message: 'Unauthorized' } })
    expect(body).not.toContain(token.slice(0, 20))
    expect(await refusedUpgrade(bearer(token))).toBe(401)
    expect(await refusedUpgrade({}, ['flumen.v1', `bearer.${token}`])).toBe(401)
    expect((await sse(bearer(token))).response.statusCode).toBe(401)
    for (const socket of sockets.splice(0)) socket.terminate()
    for (const stream of streams.splice(0)) stream.close()
    await check.assertClean()
  })

  it('no credentials → 401 with a plain challenge on every transport; the same body as a wrong key', async () => {
    const { http, refusedUpgrade, sse, hub } = await start()
    const none = await http('/api/me')
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="flumen"')
    const wrongKey = await http('/api/me', { headers: { 'x-api-key': 'k-0123456789abcdeX' } })
    expect(wrongKey.status).toBe(401)
    expect(await wrongKey.text()).toBe(await none.text())
    expect(await refusedUpgrade()).toBe(401)
    expect((await sse()).response.statusCode).toBe(401)
    expect(hub.stats.peers).toBe(0)
  })

  it('a tampered or foreign session cookie → 401', async () => {
    const { http, session } = await start()
    const login = await http('/session', { method: 'POST' })
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!
    expect(login.headers.get('set-cookie')).toMatch(/HttpOnly/i)
    expect(login.headers.get('set-cookie')).toMatch(/SameSite=Lax/i)
    expect((await http('/api/me', { headers: { cookie } })).status).toBe(200)
    const [name, value] = cookie.split('=') as [string, string]
    const [v, payload, signature] = value.split('.') as [string, string, string]
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), u: { id: 'admin' } }),
    ).toString('base64url')
    for (const bad of [
      `${v}.${forged}.${signature}`,
      `${value}x`,
      'v1.e30.AAAA',
      'garbage',
      `${v}.${payload}.`,
    ]) {
      expect((await http('/api/me', { headers: { cookie: `${name}=${bad}` } })).status).toBe(401)
    }
    // Signed with another secret.
    const other = sessionCookie({ secret: 'x'.repeat(40) })
    expect(session.verify(value)).toBeDefined()
    expect(other.verify(value)).toBeUndefined()
  })

  it('sign-out revokes the session: a copy of its cookie made before no longer works', async () => {
    const { http, open } = await start()
    const cookie = (await http('/session', { method: 'POST' })).headers.get('set-cookie')!.split(';')[0]!
    const other = (await http('/session', { method: 'POST' })).headers.get('set-cookie')!.split(';')[0]!
    expect((await http('/api/me', { headers: { cookie } })).status).toBe(200)
    const logout = await http('/logout', { method: 'POST', headers: { cookie } })
    expect(logout.status).toBe(204)
    expect(logout.headers.get('set-cookie')).toMatch(/Max-Age=0/i)
    expect((await http('/api/me', { headers: { cookie } })).status).toBe(401)
    await expect(open({ cookie })).rejects.toThrow(/401/)
    // Another session of the same user is its own: still signed in.
    expect((await http('/api/me', { headers: { cookie: other } })).status).toBe(200)
  })

  it('JWKS: unknown kid → 401; a key rotated in at the issuer is picked up', async () => {
    const jwks = await startJwks()
    jwks.serve([await jwk(es1.publicKey, 'k1')])
    const { http } = await start({ jwksUrl: jwks.url })
    expect((await http('/api/me', { headers: bearer(await es(es1.privateKey, 'k1')) })).status).toBe(200)
    const rotated = await es(es2.privateKey, 'k2')
    expect((await http('/api/me', { headers: bearer(rotated) })).status).toBe(401)
    // Signed by the right key but claiming another kid.
    expect((await http('/api/me', { headers: bearer(await es(es1.privateKey, 'k9')) })).status).toBe(401)
    jwks.serve([await jwk(es1.publicKey, 'k1'), await jwk(es2.publicKey, 'k2')])
    const me = await http('/api/me', { headers: bearer(rotated) })
    expect(me.status).toBe(200)
    expect(await me.json()).toEqual({ id: 'erin' })
  })
})

describe('auth: accepted credentials and their sources', () => {
  it('HS256 and RS256 tokens, an API key and a session cookie all set c.var.user', async () => {
    const { http } = await start()
    const hsMe = await http('/api/me', { headers: bearer(await valid('alice', { roles: ['editor'] })) })
    expect(await hsMe.json()).toEqual({ id: 'alice', name: 'alice', roles: ['editor'] })
    const rs = await new SignJWT({ sub: 'bob', exp: now() + 60 })
      .setProtectedHeader({ alg: 'RS256' })
      .sign(rsa.privateKey)
    expect(await (await http('/api/me', { headers: bearer(rs) })).json()).toEqual({ id: 'bob' })
    const keyed = await http('/api/me', { headers: { 'x-api-key': 'k-0123456789abcdef' } })
    expect(await keyed.json()).toEqual({ id: 'robot', roles: ['admin'] })
    const cookie = (await http('/session', { method: 'POST' })).headers.get('set-cookie')!.split(';')[0]!
    expect(await (await http('/api/me', { headers: { cookie } })).json()).toEqual({
      id: 'carol',
      name: 'carol',
    })
  })

  it('WS takes the token from the header or a bearer.<token> subprotocol and echoes only flumen.v1', async () => {
    const { open } = await start()
    const token = await valid('alice')
    const viaHeader = await open(bearer(token))
    expect(viaHeader.protocol).toBe('flumen.v1')
    const viaProtocol = await open({}, ['flumen.v1', `bearer.${token}`])
    expect(viaProtocol.protocol).toBe('flumen.v1')
    expect(await request(viaProtocol, { type: 'subscribe', topic: 'user:alice' })).toMatchObject({
      type: 'ack',
    })
  })

  it('access_token in the query only when queryToken is on', async () => {
    const token = await valid('alice')
    const off = await start()
    expect((await off.http(`/api/me?access_token=${token}`)).status).toBe(401)
    const on = await start({ queryToken: true })
    expect((await on.http(`/api/me?access_token=${token}`)).status).toBe(200)
    expect((await on.sse({}, `topic=room:1&access_token=${token}`)).response.statusCode).toBe(200)
  })
})

describe('auth: cookies and origins', () => {
  it('refuses a cookie upgrade or stream from a foreign origin with 403, allows its own and listed ones', async () => {
    const { http, refusedUpgrade, open, sse, server } = await start()
    const cookie = (await http('/session', { method: 'POST' })).headers.get('set-cookie')!.split(';')[0]!
    expect(await refusedUpgrade({ cookie, origin: 'https://evil.example' })).toBe(403)
    expect(await refusedUpgrade({ cookie, origin: 'null' })).toBe(403)
    expect((await open({ cookie, origin: server.url.replace(/\/$/, '') })).protocol).toBe('flumen.v1')
    expect((await open({ cookie, origin: 'https://app.example' })).protocol).toBe('flumen.v1')
    expect((await sse({ cookie, origin: 'https://evil.example' })).response.statusCode).toBe(403)
    expect((await sse({ cookie, origin: 'https://app.example' })).response.statusCode).toBe(200)
    // A bearer token is not sent by the browser on its own: no origin check for it.
    expect((await open({ ...bearer(await valid('alice')), origin: 'https://evil.example' })).readyState).toBe(
      1,
    )
  })

  it('protects state-changing requests made with a cookie (CSRF), not those with a token', async () => {
    const { http, server } = await start()
    const cookie = (await http('/session', { method: 'POST' })).headers.get('set-cookie')!.split(';')[0]!
    const post = (headers: Record<string, string>): Promise<Response> =>
      http('/api/things', { method: 'POST', headers })
    expect((await post({ cookie, origin: 'https://evil.example' })).status).toBe(403)
    expect((await post({ cookie, 'sec-fetch-site': 'cross-site' })).status).toBe(403)
    expect((await post({ cookie, origin: server.url.replace(/\/$/, '') })).status).toBe(201)
    expect((await post({ cookie, 'sec-fetch-site': 'same-origin' })).status).toBe(201)
    expect((await post({ cookie })).status).toBe(201) // not a browser: neither header
    expect((await post({ ...bearer(await valid('alice')), origin: 'https://evil.example' })).status).toBe(201)
    // Reading with a cookie from anywhere is fine (CORS decides what the page may see).
    expect((await http('/api/me', { headers: { cookie, origin: 'https://evil.example' } })).status).toBe(200)
  })
})

describe('auth: live connections', () => {
  it('closes a WS with 4001 when its token expires; an auth refresh keeps another open', async () => {
    const { open } = await start()
    const shortLived = await valid('alice', { exp: now() + 2 })
    const expiring = await open(bearer(shortLived))
    const refreshed = await open(bearer(shortLived))
    expect(await request(refreshed, { type: 'auth', token: await valid('alice') })).toMatchObject({
      type: 'ack',
    })
    // Someone else's token is refused and changes nothing.
    expect(await request(refreshed, { type: 'auth', token: await valid('mallory') })).toMatchObject({
      type: 'error',
      code: 'UNAUTHORIZED',
    })
    expect(await request(refreshed, { type: 'auth', token: 'garbage' })).toMatchObject({
      code: 'UNAUTHORIZED',
    })
    const [code, reason] = (await once(expiring, 'close')) as [number, Buffer]
    expect(code).toBe(4001)
    expect(reason.toString()).toBe('Token expired')
    expect(refreshed.readyState).toBe(WebSocket.OPEN)
    expect(await request(refreshed, { type: 'publish', topic: 'room:1', data: 'still here' })).toMatchObject({
      type: 'ack',
    })
  })

  it('ends an SSE stream when its token expires, so the client reconnects with a fresh one', async () => {
    const { sse } = await start()
    const stream = await sse(bearer(await valid('alice', { exp: now() + 1 })))
    expect(stream.response.statusCode).toBe(200)
    const started = Date.now()
    await stream.closed
    expect(Date.now() - started).toBeLessThan(2_500)
  })
})

describe('topicRules', () => {
  it('allows and denies as written over the hub', async () => {
    const { open } = await start()
    const alice = await open(bearer(await valid('alice')))
    const ok = (message: Record<string, unknown>) =>
      expect(request(alice, message)).resolves.toMatchObject({ type: 'ack' })
    const denied = (message: Record<string, unknown>) =>
      expect(request(alice, message)).resolves.toMatchObject({ type: 'error', code: 'FORBIDDEN' })
    await ok({ type: 'subscribe', topic: 'room:42' })
    await ok({ type: 'publish', topic: 'room:42', data: 1 })
    await ok({ type: 'subscribe', topic: 'user:alice' })
    await denied({ type: 'subscribe', topic: 'user:bob' })
    await denied({ type: 'publish', topic: 'user:alice', data: 1 })
    await ok({ type: 'subscribe', topic: 'dashboard' })
    await denied({ type: 'publish', topic: 'dashboard', data: 1 })
    await denied({ type: 'subscribe', topic: 'admin:ops' })
    await denied({ type: 'subscribe', topic: 'elsewhere' })
    const robot = await open({ 'x-api-key': 'k-0123456789abcdef' })
    expect(await request(robot, { type: 'publish', topic: 'admin:ops', data: 1 })).toMatchObject({
      type: 'ack',
    })
  })

  it('matches placeholders exactly and denies by default', () => {
    const authorize = topicRules({ 'user:{id}': ['subscribe'], 'team:{team}:*': ['publish'] })
    const user = { id: 'a', team: 't1' }
    expect(authorize({ user, action: 'subscribe', topic: 'user:a' })).toBe(true)
    expect(authorize({ user, action: 'subscribe', topic: 'user:ab' })).toBe(false)
    expect(authorize({ user, action: 'subscribe', topic: 'user:' })).toBe(false)
    expect(authorize({ user, action: 'publish', topic: 'team:t1:news' })).toBe(true)
    expect(authorize({ user, action: 'publish', topic: 'team:t2:news' })).toBe(false)
    expect(authorize({ user: undefined, action: 'subscribe', topic: 'user:undefined' })).toBe(false)
    expect(topicRules({})({ user, action: 'call', topic: 'anything' })).toBe(false)
    expect(() => topicRules({ x: ['delete' as 'call'] })).toThrow(/actions/)
  })
})

describe('options are checked up front', () => {
  it('refuses weak or contradictory configuration with a plain Error', () => {
    expect(() => jwt({ secret: 'short' })).toThrow(/32 bytes/)
    expect(() => jwt({ publicKey: rsaPem })).toThrow(/algorithms is required/)
    expect(() => jwt({ publicKey: rsaPem, algorithms: ['HS256'] })).toThrow(/does not fit/)
    expect(() => jwt({ secret, algorithms: ['RS256'] })).toThrow(/does not fit/)
    expect(() => jwt({ secret, jwks: 'http://x' })).toThrow(/exactly one/)
    expect(() => sessionCookie({ secret: 'short' })).toThrow(/32 characters/)
    expect(() => apiKey({ keys: { short: { id: 'x' } } })).toThrow(/16 characters/)
    expect(() => auth({ strategies: [] })).toThrow(/non-empty/)
  })

  it('never logs a token: a failing JWKS endpoint is logged without it', async () => {
    const logError = vi.fn()
    const strategy = jwt({ jwks: 'http://127.0.0.1:1/jwks', algorithms: ['ES256'], logError })
    const token = await es(es1.privateKey, 'k1')
    const found = await strategy.authenticate(
      { token, tokenSource: 'header', cookie: () => undefined },
      undefined,
    )
    expect(found).toBeUndefined()
    expect(logError).toHaveBeenCalledTimes(1)
    expect(String(logError.mock.calls[0]![0])).not.toContain(token.slice(-20))
  })
})
