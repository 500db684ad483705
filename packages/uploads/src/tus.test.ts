import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { type ClientRequest, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auth, custom } from '@flumen/auth'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { waitFor } from '@flumen/testing'
import { Upload } from 'tus-js-client'
import { afterEach, describe, expect, it } from 'vitest'
import type { StoredFile, TusOptions } from './index.js'
import { diskStorage, memoryStorage, tus } from './index.js'

const servers: FlumenServer[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 500 })))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

const start = async (options: Partial<TusOptions> = {}, withAuth = false) => {
  const dir = await mkdtemp(join(tmpdir(), 'flumen-tus-test-'))
  dirs.push(dir)
  const completed: StoredFile[] = []
  const route = tus({
    storage: diskStorage({ dir }),
    onComplete: (file) => {
      completed.push(file)
    },
    ...options,
  })
  const app = createApp({ logError: () => {} })
  // The user is whoever `x-user` names: enough to tell owners apart.
  if (withAuth)
    app.use(
      '/files/*',
      auth({
        strategies: [
          custom({
            verify: (c) => {
              const id = c.req.header('x-user')
              return id ? { id } : undefined
            },
          }),
        ],
      }),
    )
  app.route('/files', route)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1' })
  servers.push(server)
  const base = `${server.url}files`
  const call = (
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: Buffer,
  ): Promise<Response> =>
    fetch(path.startsWith('http') ? path : `${server.url.replace(/\/$/, '')}${path}`, {
      method,
      headers: { 'tus-resumable': '1.0.0', ...headers },
      ...(body && { body: new Uint8Array(body) }),
    })
  const create = async (length: number, metadata = 'filename bm90ZXMudHh0'): Promise<string> => {
    const res = await call('POST', '/files', { 'upload-length': String(length), 'upload-metadata': metadata })
    expect(res.status).toBe(201)
    return res.headers.get('location')!
  }
  const patch = (location: string, offset: number, body: Buffer, headers: Record<string, string> = {}) =>
    call(
      'PATCH',
      location,
      { 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), ...headers },
      body,
    )
  const files = async (): Promise<string[]> => [
    ...(await readdir(dir)).filter((name) => !name.startsWith('.')),
    ...(await readdir(join(dir, '.tus')).catch(() => [])).map((name) => `.tus/${name}`),
  ]
  return { server, route, dir, base, call, create, patch, completed, files }
}

/** A PATCH from offset 0 announcing `length` bytes, whose body the test writes (or cuts) itself. */
const rawPatch = (server: FlumenServer, location: string, length: number): ClientRequest =>
  request(`${server.url.replace(/\/$/, '')}${location}`, {
    method: 'PATCH',
    headers: {
      'tus-resumable': '1.0.0',
      'content-type': 'application/offset+octet-stream',
      'upload-offset': '0',
      'content-length': length,
    },
  })

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
const checksum = (data: Buffer): string => `sha256 ${createHash('sha256').update(data).digest('base64')}`

describe('tus 1.0', () => {
  it('announces itself and requires Tus-Resumable', async () => {
    const { call } = await start({ maxSize: 5000 })
    const options = await fetch(`${(await start()).server.url}files`, { method: 'OPTIONS' })
    expect(options.status).toBe(204)
    expect(options.headers.get('tus-version')).toBe('1.0.0')
    expect(options.headers.get('tus-extension')).toBe(
      'creation,creation-with-upload,termination,expiration,checksum',
    )
    expect(options.headers.get('tus-checksum-algorithm')).toBe('sha256')
    const missing = await fetch(`${(await start()).server.url}files`, {
      method: 'POST',
      headers: { 'upload-length': '1' },
    })
    expect(missing.status).toBe(412)
    expect(missing.headers.get('tus-version')).toBe('1.0.0')
    expect((await call('POST', '/files', { 'upload-length': '5001' })).status).toBe(413)
    expect((await call('POST', '/files', { 'upload-length': 'lots' })).status).toBe(400)
    expect(
      (await call('POST', '/files', { 'upload-length': '10', 'upload-metadata': 'bad key value x' })).status,
    ).toBe(400)
  })

  it('creates, reports the offset, takes chunks and completes with the right SHA-256', async () => {
    const { create, call, patch, completed, files } = await start()
    const content = randomBytes(300_000)
    const location = await create(content.length)
    expect(location).toMatch(/^\/files\/[\w-]{16}$/)
    const head = await call('HEAD', location)
    expect(head.status).toBe(200)
    expect(head.headers.get('upload-offset')).toBe('0')
    expect(head.headers.get('upload-length')).toBe('300000')
    expect(head.headers.get('cache-control')).toBe('no-store')
    expect(head.headers.get('upload-metadata')).toBe('filename bm90ZXMudHh0')
    const first = await patch(location, 0, content.subarray(0, 100_000))
    expect(first.status).toBe(204)
    expect(first.headers.get('upload-offset')).toBe('100000')
    expect(first.headers.get('upload-expires')).toMatch(/GMT$/)
    const rest = await patch(location, 100_000, content.subarray(100_000))
    expect(rest.headers.get('upload-offset')).toBe('300000')
    expect(completed).toEqual([
      expect.objectContaining({ size: 300_000, sha256: sha256(content), name: 'notes.txt' }),
    ])
    const id = location.split('/').pop()!
    expect(await files()).toEqual(expect.arrayContaining([id, `${id}.json`]))
    // Complete: HEAD still answers with its offset, the whole length (a resuming client is done).
    const done = await call('HEAD', location)
    expect(done.status).toBe(200)
    expect(done.headers.get('upload-offset')).toBe('300000')
    expect(done.headers.get('upload-length')).toBe('300000')
  })

  it('creation-with-upload stores the first bytes with the POST', async () => {
    const { server, completed } = await start()
    const content = Buffer.from('all in one request')
    const res = await fetch(`${server.url}files`, {
      method: 'POST',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-length': String(content.length),
        'content-type': 'application/offset+octet-stream',
      },
      body: new Uint8Array(content),
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('upload-offset')).toBe(String(content.length))
    expect(completed[0]).toMatchObject({ sha256: sha256(content), type: 'text/plain' })
  })

  it('resumes after a cut connection from the offset the server kept', async () => {
    const { create, call, patch, completed, server } = await start()
    const content = randomBytes(2_000_000)
    const location = await create(content.length)
    // Send 1 MB of a 2 MB PATCH, then cut the connection.
    await new Promise<void>((resolve) => {
      const req = rawPatch(server, location, content.length)
      req.on('error', () => resolve())
      req.write(content.subarray(0, 1_000_000), () => setTimeout(() => req.destroy(), 100))
      req.on('close', () => resolve())
    })
    let offset = 0
    for (let i = 0; i < 50 && offset < 1_000_000; i++) {
      offset = Number((await call('HEAD', location)).headers.get('upload-offset'))
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(offset).toBe(1_000_000)
    const rest = await patch(location, offset, content.subarray(offset))
    expect(rest.status).toBe(204)
    expect(completed[0]).toMatchObject({ size: content.length, sha256: sha256(content) })
  })

  it('409 on an offset mismatch, 460 on a checksum mismatch (the chunk is dropped), 415, 413', async () => {
    const { create, call, patch, completed } = await start()
    const content = randomBytes(1000)
    const location = await create(1000)
    const wrongOffset = await patch(location, 10, content.subarray(0, 10))
    expect(wrongOffset.status).toBe(409)
    expect(wrongOffset.headers.get('upload-offset')).toBe('0')
    const bad = await patch(location, 0, content.subarray(0, 500), {
      'upload-checksum': checksum(Buffer.from('other')),
    })
    expect(bad.status).toBe(460)
    expect((await call('HEAD', location)).headers.get('upload-offset')).toBe('0')
    expect(
      (await patch(location, 0, content.subarray(0, 500), { 'upload-checksum': 'md5 xyz' })).status,
    ).toBe(400)
    const good = await patch(location, 0, content.subarray(0, 500), {
      'upload-checksum': checksum(content.subarray(0, 500)),
    })
    expect(good.status).toBe(204)
    expect(good.headers.get('upload-offset')).toBe('500')
    const wrongType = await call(
      'PATCH',
      location,
      { 'content-type': 'text/plain', 'upload-offset': '500' },
      Buffer.from('x'),
    )
    expect(wrongType.status).toBe(415)
    expect((await patch(location, 500, randomBytes(501))).status).toBe(413)
    expect((await call('HEAD', location)).headers.get('upload-offset')).toBe('500')
    expect((await patch(location, 500, content.subarray(500))).status).toBe(204)
    expect(completed[0]!.sha256).toBe(sha256(content))
  })

  it('expires unfinished uploads: 410, then swept away', async () => {
    const { create, call, patch, route, files } = await start({ expiresInMs: 300 })
    const location = await create(100)
    expect((await patch(location, 0, randomBytes(10))).status).toBe(204)
    const other = await create(100)
    await new Promise((resolve) => setTimeout(resolve, 350))
    expect((await call('HEAD', location)).status).toBe(410)
    expect((await patch(location, 10, randomBytes(10))).status).toBe(404) // removed on the 410
    expect(await route.sweep()).toBe(1) // `other`, never touched again
    expect((await call('HEAD', other)).status).toBe(404)
    expect(await files()).toEqual([])
  })

  it('terminates an upload with DELETE', async () => {
    const { create, call, files } = await start()
    const location = await create(100)
    expect((await call('DELETE', location)).status).toBe(204)
    expect((await call('HEAD', location)).status).toBe(404)
    expect((await call('DELETE', location)).status).toBe(404)
    expect((await call('HEAD', '/files/..%2F..%2Fetc')).status).toBe(404)
    expect(await files()).toEqual([])
  })

  it('checks the type of a completed upload by magic bytes', async () => {
    const { create, patch, files, dir } = await start({ allowedTypes: ['image/png'] })
    const location = await create(5)
    expect((await patch(location, 0, Buffer.from('<svg>'))).status).toBe(415)
    expect(await files()).toEqual([])
    const png = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      randomBytes(100),
    ])
    const ok = await create(png.length)
    expect((await patch(ok, 0, png)).status).toBe(204)
    const id = ok.split('/').pop()!
    expect(JSON.parse(await readFile(join(dir, `${id}.json`), 'utf8'))).toMatchObject({ type: 'image/png' })
  })
})

/** One upload with tus-js-client; resolves with the URL it ended at. */
const tusUpload = (
  endpoint: string,
  content: Buffer,
  options: { uploadUrl?: string; headers?: Record<string, string> } = {},
): Promise<string> =>
  new Promise((resolve, reject) => {
    const upload = new Upload(content, {
      endpoint,
      chunkSize: 256 * 1024,
      retryDelays: [],
      metadata: { filename: 'client.bin' },
      ...(options.uploadUrl && { uploadUrl: options.uploadUrl }),
      ...(options.headers && { headers: options.headers }),
      onError: reject,
      onSuccess: () => resolve(upload.url!),
    })
    upload.start()
  })

describe('tus: owners, quotas, standard clients', () => {
  it('binds an upload to its owner: another user gets 404 for HEAD, PATCH and DELETE', async () => {
    const { call, patch } = await start({}, true)
    const alice = { 'x-user': 'alice' }
    const res = await call('POST', '/files', { 'upload-length': '10', ...alice })
    expect(res.status).toBe(201)
    const location = res.headers.get('location')!
    for (const method of ['HEAD', 'DELETE'])
      expect((await call(method, location, { 'x-user': 'bob' })).status, method).toBe(404)
    expect((await patch(location, 0, randomBytes(10), { 'x-user': 'bob' })).status).toBe(404)
    expect((await call('HEAD', location, alice)).status).toBe(200)
    expect((await patch(location, 0, randomBytes(10), alice)).status).toBe(204)
    // Completed: still only its owner sees it.
    expect((await call('HEAD', location, { 'x-user': 'bob' })).status).toBe(404)
    expect((await call('HEAD', location, alice)).headers.get('upload-offset')).toBe('10')
  })

  it('limits unfinished uploads per owner by count (429) and bytes (413)', async () => {
    const { call } = await start({ maxUploadsPerOwner: 2, maxBytesPerOwner: 1000 }, true)
    const post = (user: string, length: number): Promise<Response> =>
      call('POST', '/files', { 'upload-length': String(length), 'x-user': user })
    const first = await post('alice', 100)
    expect((await post('alice', 100)).status).toBe(201)
    const third = await post('alice', 100)
    expect(third.status).toBe(429)
    expect((await third.json()).error.code).toBe('RATE_LIMITED')
    expect((await post('bob', 1001)).status).toBe(413)
    expect((await post('bob', 1000)).status).toBe(201)
    expect((await call('DELETE', first.headers.get('location')!, { 'x-user': 'alice' })).status).toBe(204)
    expect((await post('alice', 100)).status).toBe(201)
  })

  it('tus-js-client uploads, and resuming a completed upload finishes at once (no second upload)', async () => {
    const { server, completed } = await start()
    const endpoint = `${server.url}files`
    const content = randomBytes(700_000)
    const url = await tusUpload(endpoint, content)
    expect(completed).toHaveLength(1)
    expect(completed[0]).toMatchObject({ size: content.length, sha256: sha256(content), name: 'client.bin' })
    // A reload after the last chunk: the client resumes with the stored URL.
    const again = await tusUpload(endpoint, content, { uploadUrl: url })
    expect(again).toBe(url)
    expect(completed).toHaveLength(1)
  })

  it('cuts a trickling PATCH with 408 and keeps the bytes that arrived', async () => {
    const { create, call, server } = await start({ minBytesPerSecond: 1000, rateWindowMs: 300 })
    const location = await create(100_000)
    const started = Date.now()
    const status = await new Promise<number>((resolve) => {
      const req = rawPatch(server, location, 100_000)
      req.on('response', (res) => resolve(res.statusCode ?? 0))
      req.on('error', () => resolve(0))
      req.write(randomBytes(50))
      const timer = setInterval(() => (req.destroyed ? clearInterval(timer) : req.write('x')), 100)
      req.on('close', () => clearInterval(timer))
    })
    expect(status).toBe(408)
    expect(Date.now() - started).toBeLessThan(3_000)
    await waitFor(async () => Number((await call('HEAD', location)).headers.get('upload-offset')) >= 50)
  })

  it('publishes progress, done, and failed on termination, to the topic the metadata names', async () => {
    const events: { topic: string; data: { type: string; received?: number; total?: number } }[] = []
    const publisher = {
      publish: async (topic: string, data: unknown) => {
        events.push({ topic, data: data as (typeof events)[number]['data'] })
        return 1
      },
    }
    const { call, create, patch, route } = await start({
      progress: {
        publisher,
        topic: (_c, metadata) => `room:${metadata.room ?? 'none'}`,
        intervalMs: 0,
        toMessage: (event, c) => ({ ...event, from: c.req.header('x-who') ?? 'nobody' }),
      },
    })
    // The room named at creation gets the PATCHes' events (`room` is `cm9vbS0x`: room-1).
    const location = await create(200_000, 'filename bm90ZXMudHh0,room cm9vbS0x')
    expect((await patch(location, 0, randomBytes(200_000))).status).toBe(204)
    const progress = events.filter((event) => event.data.type === 'upload-progress')
    expect(progress.length).toBeGreaterThan(0)
    expect(progress.at(-1)!.data).toMatchObject({ received: 200_000, total: 200_000, from: 'nobody' })
    expect(events.at(-1)).toMatchObject({
      topic: 'room:room-1',
      data: { type: 'upload-done', from: 'nobody' },
    })
    expect(route.stats).toMatchObject({ active: 0, completed: 1, failed: 0, bytes: 200_000 })
    // A terminated upload tells its watchers it will not arrive.
    const cancelled = await create(100_000, 'filename bm90ZXMudHh0,room cm9vbS0x')
    expect((await patch(cancelled, 0, randomBytes(1_000))).status).toBe(204)
    expect((await call('DELETE', cancelled)).status).toBe(204)
    expect(events.at(-1)).toMatchObject({
      topic: 'room:room-1',
      data: { type: 'upload-failed', error: { code: 'ABORTED' }, from: 'nobody' },
    })
    expect(() =>
      tus({ storage: memoryStorage(), progress: { publisher, topic: () => 't', toMessage: 'x' as never } }),
    ).toThrow('tus: progress.toMessage must be a function')
  })
})
