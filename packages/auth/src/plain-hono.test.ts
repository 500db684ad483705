import { Hono } from 'hono'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { auth, jwt, sessionCookie } from './index.js'

// auth() in apps that are not createApp(): a plain `new Hono()` and a sub-app mounted with
// `app.route()`, answered by Hono's own error handling (no serve() needed for HTTP routes).
const secret = 'plain-hono-secret-that-is-at-least-32-bytes'
const session = sessionCookie({ secret: `${secret}-cookies` })
const authn = auth({ strategies: [jwt({ secret, clockToleranceSec: 0 }), session] })
const maybe = auth({ strategies: [jwt({ secret })], optional: true })

const token = (sub: string): Promise<string> =>
  new SignJWT({ name: sub })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime('1m')
    .sign(new TextEncoder().encode(secret))

const api = new Hono()
  .get('/me', authn, (c) => c.json(c.var.user))
  .post('/things', authn, (c) => c.json({ by: c.var.user.id }, 201))
  .get('/hello', maybe, (c) => c.json({ hello: c.var.user?.name ?? 'stranger' }))
const app = new Hono()
  .post('/session', (c) => {
    session.issue(c, { id: 'carol', name: 'carol' })
    return c.body(null, 204)
  })
  .route('/api', api)

describe('auth() in a plain new Hono()', () => {
  it('answers a request without credentials 401 with WWW-Authenticate and the JSON error body', async () => {
    const res = await app.request('/api/me')
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="flumen"')
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'Unauthorized' } })
  })

  it('answers a bad token 401 invalid_token, and a good one with the user', async () => {
    const bad = await app.request('/api/me', { headers: { authorization: 'Bearer not.a.jwt' } })
    expect(bad.status).toBe(401)
    expect(bad.headers.get('www-authenticate')).toBe('Bearer realm="flumen", error="invalid_token"')
    expect((await bad.json()).error.code).toBe('UNAUTHORIZED')
    const good = await app.request('/api/me', { headers: { authorization: `Bearer ${await token('ann')}` } })
    expect(good.status).toBe(200)
    expect(await good.json()).toMatchObject({ id: 'ann', name: 'ann' })
  })

  it('refuses a cookie-authenticated write from another site 403, as JSON', async () => {
    const signIn = await app.request('/session', { method: 'POST' })
    const cookie = signIn.headers.get('set-cookie')?.split(';')[0] ?? ''
    expect(cookie).toMatch(/^flumen_session=/)
    const sameSite = await app.request('http://localhost/api/things', {
      method: 'POST',
      headers: { cookie, origin: 'http://localhost' },
    })
    expect(sameSite.status).toBe(201)
    const crossSite = await app.request('http://localhost/api/things', {
      method: 'POST',
      headers: { cookie, origin: 'https://evil.example' },
    })
    expect(crossSite.status).toBe(403)
    expect(await crossSite.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'Origin not allowed' } })
  })

  it('lets anonymous requests through optional auth, but not a wrong token', async () => {
    expect(await (await app.request('/api/hello')).json()).toEqual({ hello: 'stranger' })
    const named = await app.request('/api/hello', {
      headers: { authorization: `Bearer ${await token('bo')}` },
    })
    expect(await named.json()).toEqual({ hello: 'bo' })
    const wrong = await app.request('/api/hello', { headers: { authorization: 'Bearer wrong' } })
    expect(wrong.status).toBe(401)
  })
})
