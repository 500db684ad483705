import { bearerAuth } from 'hono/bearer-auth'
import { bodyLimit } from 'hono/body-limit'
import { cors } from 'hono/cors'
import { csrf } from 'hono/csrf'
import { HTTPException } from 'hono/http-exception'
import { secureHeaders } from 'hono/secure-headers'
import { afterEach, describe, expect, it } from 'vitest'
import type { FetchApp, FlumenServer } from './index.js'
import { createApp, FlumenError, serve } from './index.js'

const servers: FlumenServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 100 })))
})

const start = async (app: FetchApp): Promise<FlumenServer> => {
  const server = await serve(app, { port: 0, hostname: '127.0.0.1' })
  servers.push(server)
  return server
}

describe('createApp', () => {
  it('runs plain Hono middleware (cors, secure-headers)', async () => {
    const app = createApp()
    app.use('*', secureHeaders())
    app.use('/api/*', cors({ origin: 'https://app.example' }))
    app.get('/api/data', (c) => c.json({ ok: true }))
    const server = await start(app)

    const res = await fetch(new URL('/api/data', server.url), { headers: { Origin: 'https://app.example' } })
    expect(await res.json()).toEqual({ ok: true })
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN')

    const preflight = await fetch(new URL('/api/data', server.url), {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST')
  })

  it('turns a throwing handler into a JSON 500 without internals', async () => {
    const logged: unknown[] = []
    const app = createApp({ logError: (err) => logged.push(err) })
    app.get('/boom', () => {
      throw new Error('connection to db at 10.0.0.7 refused')
    })
    const server = await start(app)
    const res = await fetch(new URL('/boom', server.url))
    expect(res.status).toBe(500)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: 'Internal server error' } })
    expect(text).not.toMatch(/10\.0\.0\.7|at |\.ts/)
    expect(logged).toHaveLength(1)
  })

  it('sends FlumenError and HTTPException with their status, code and headers', async () => {
    const app = createApp({ logError: () => {} })
    app.get('/forbidden', () => {
      throw new FlumenError('FORBIDDEN', 'Not your room')
    })
    app.get('/limited', () => {
      throw new FlumenError('RATE_LIMITED', undefined, { headers: { 'Retry-After': '3' } })
    })
    app.get('/http-exception', () => {
      throw new HTTPException(409, { message: 'Already exists' })
    })
    app.get('/invalid', () => {
      throw new FlumenError('BAD_REQUEST', 'text: Too small', {
        issues: [{ message: 'Too small', path: ['text'] }],
      })
    })
    app.get('/custom', () => {
      throw new HTTPException(401, {
        res: new Response('custom', { status: 401, headers: { 'X-Own': '1' } }),
      })
    })
    const server = await start(app)
    const get = (path: string): Promise<Response> => fetch(new URL(path, server.url))

    const forbidden = await get('/forbidden')
    expect(forbidden.status).toBe(403)
    expect(await forbidden.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'Not your room' } })

    const limited = await get('/limited')
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('3')
    expect(await limited.json()).toEqual({ error: { code: 'RATE_LIMITED', message: 'Too many requests' } })

    // A schema's issues go with the code and message.
    expect(await (await get('/invalid')).json()).toEqual({
      error: {
        code: 'BAD_REQUEST',
        message: 'text: Too small',
        issues: [{ message: 'Too small', path: ['text'] }],
      },
    })

    const conflict = await get('/http-exception')
    expect(conflict.status).toBe(409)
    expect(await conflict.json()).toEqual({ error: { code: 'CONFLICT', message: 'Already exists' } })

    // Its own Response keeps its status and headers; the body becomes the JSON of every error.
    const custom = await get('/custom')
    expect(custom.status).toBe(401)
    expect(custom.headers.get('x-own')).toBe('1')
    expect(await custom.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'Unauthorized' } })
  })

  it("answers Hono's own HTTPExceptions (bodyLimit, bearerAuth, csrf) as JSON with their headers", async () => {
    const app = createApp({ logError: () => {} })
    app.post('/limited', bodyLimit({ maxSize: 8 }), (c) => c.text('never'))
    app.post('/form', csrf(), (c) => c.text('never'))
    app.get('/bearer', bearerAuth({ token: 'secret-token' }), (c) => c.text('never'))
    const server = await start(app)
    const limited = await fetch(new URL('/limited', server.url), { method: 'POST', body: 'x'.repeat(100) })
    expect(limited.status).toBe(413)
    expect(await limited.json()).toEqual({ error: { code: 'TOO_LARGE', message: 'Payload too large' } })
    const bearer = await fetch(new URL('/bearer', server.url))
    expect(bearer.status).toBe(401)
    expect(bearer.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect((await bearer.json()).error.code).toBe('UNAUTHORIZED')
    const crossSite = await fetch(new URL('/form', server.url), {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    })
    expect(crossSite.status).toBe(403)
    expect((await crossSite.json()).error.code).toBe('FORBIDDEN')
  })

  it('answers unknown routes with a JSON 404', async () => {
    const server = await start(createApp())
    const res = await fetch(new URL('/missing', server.url))
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'Not found' } })
  })

  it('validates its options', () => {
    expect(() => createApp({ logError: 'yes' as never })).toThrow(/logError must be a function/)
  })
})

describe('FlumenError', () => {
  it('maps codes to HTTP statuses and close codes', () => {
    const slow = new FlumenError('SLOW_CONSUMER')
    expect([slow.status, slow.closeCode]).toEqual([503, 4008])
    const unauthorized = new FlumenError('UNAUTHORIZED')
    expect([unauthorized.status, unauthorized.closeCode, unauthorized.message]).toEqual([
      401,
      4001,
      'Unauthorized',
    ])
    expect(new FlumenError('TOO_LARGE').closeCode).toBe(1009)
  })
})
