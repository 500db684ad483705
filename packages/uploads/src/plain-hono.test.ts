import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AuthEnv } from '@flumen/auth'
import { auth, custom } from '@flumen/auth'
import type { FlumenServer } from '@flumen/core'
import { serve } from '@flumen/core'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { diskStorage, tus, uploads } from './index.js'

// uploads() and tus() in a sub-app of a plain `new Hono()` behind auth(): refusals are answered as
// the documented JSON, and the callbacks read the typed user of the route (`<AuthEnv>`).
const servers: FlumenServer[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

const authn = auth({
  strategies: [
    custom({ verify: (c) => (c.req.header('x-user') ? { id: c.req.header('x-user')! } : undefined) }),
  ],
})

const start = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), 'flumen-plain-hono-'))
  dirs.push(dir)
  const storage = diskStorage({ dir })
  const files = new Hono()
    .post(
      '/upload',
      authn,
      uploads<AuthEnv>({
        storage,
        limits: { totalSize: 1024 },
        onComplete: (result, c) => c.json({ by: c.var.user.id, files: result.files.length }, 201),
      }),
    )
    .use('/tus/*', authn)
    .route('/tus', tus<AuthEnv>({ storage, owner: (c) => `owner:${c.var.user.id}` }))
  const app = new Hono().route('/files', files)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {} })
  servers.push(server)
  return `${server.url}files`
}

const form = (): FormData => {
  const body = new FormData()
  body.append('file', new Blob(['hello']), 'hello.txt')
  return body
}

describe('uploads() and tus() in a plain new Hono()', () => {
  it('answers 401, 415 and 413 with the JSON error body, and 201 from onComplete', async () => {
    const base = await start()
    const anonymous = await fetch(`${base}/upload`, { method: 'POST', body: form() })
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="flumen"')
    expect((await anonymous.json()).error.code).toBe('UNAUTHORIZED')

    const headers = { 'x-user': 'ann' }
    const text = await fetch(`${base}/upload`, { method: 'POST', headers, body: 'plain text' })
    expect(text.status).toBe(415)
    expect(await text.json()).toEqual({
      error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Expected multipart/form-data' },
    })

    const large = new FormData()
    large.append('file', new Blob([Buffer.alloc(4096)]), 'large.bin')
    const tooLarge = await fetch(`${base}/upload`, { method: 'POST', headers, body: large })
    expect(tooLarge.status).toBe(413)
    expect((await tooLarge.json()).error.code).toBe('TOO_LARGE')

    const ok = await fetch(`${base}/upload`, { method: 'POST', headers, body: form() })
    expect(ok.status).toBe(201)
    expect(await ok.json()).toEqual({ by: 'ann', files: 1 })
  })

  it('serves tus with the owner of the typed user: another user sees a 404', async () => {
    const base = await start()
    const created = await fetch(`${base}/tus`, {
      method: 'POST',
      headers: { 'x-user': 'ann', 'tus-resumable': '1.0.0', 'upload-length': '5' },
    })
    expect(created.status).toBe(201)
    const location = new URL(created.headers.get('location')!, base).href
    const head = (user: string): Promise<Response> =>
      fetch(location, { method: 'HEAD', headers: { 'x-user': user, 'tus-resumable': '1.0.0' } })
    expect((await head('ann')).headers.get('upload-offset')).toBe('0')
    expect((await head('bo')).status).toBe(404)
    const noVersion = await fetch(`${base}/tus`, {
      method: 'POST',
      headers: { 'x-user': 'ann', 'upload-length': '5' },
    })
    expect(noVersion.status).toBe(412)
    expect((await noVersion.json()).error.code).toBe('PRECONDITION_FAILED')
  })
})
