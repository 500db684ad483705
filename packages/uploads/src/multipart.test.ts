import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { type ClientRequest, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auth, jwt } from '@flumen/auth'
import { createHub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import type { FetchRequest } from '@flumen/testing'
import { curl, fetchOutOfProcess, leakCheck, waitFor } from '@flumen/testing'
import { SignJWT } from 'jose'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { FileStore, UploadsOptions, UploadsRoute } from './index.js'
import { diskStorage, memoryStorage, uploads } from './index.js'

const boundary = 'flumenTestBoundary42'
const servers: FlumenServer[] = []
const dirs: string[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 500 })))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

interface Started {
  server: FlumenServer
  route: UploadsRoute
  dir: string
  /** Every file left in the storage directory, partial ones included. */
  leftovers(): Promise<string[]>
}

const start = async (options: UploadsOptions = {}, storage?: FileStore): Promise<Started> => {
  const dir = await mkdtemp(join(tmpdir(), 'flumen-uploads-test-'))
  dirs.push(dir)
  const route = uploads({ storage: storage ?? diskStorage({ dir }), ...options })
  const app = createApp({ logError: () => {} })
  app.post('/upload', route)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1' })
  servers.push(server)
  const leftovers = async (): Promise<string[]> => {
    const top = (await readdir(dir)).filter((name) => !name.startsWith('.'))
    const partial = await readdir(join(dir, '.partial')).catch(() => [])
    return [...top, ...partial.map((name) => `.partial/${name}`)]
  }
  return { server, route, dir, leftovers }
}

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  json: Record<string, unknown>
}

/** POSTs with a body written by `write`; resolves with the answer even if the server cut the body short. */
const post = (
  server: FlumenServer,
  headers: Record<string, string | number>,
  write: (req: ClientRequest) => Promise<void>,
  path = '/upload',
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = request(`${server.url.replace(/\/$/, '')}${path}`, { method: 'POST', headers })
    req.on('response', async (res) => {
      const chunks: Buffer[] = []
      for await (const chunk of res) chunks.push(chunk as Buffer)
      const text = Buffer.concat(chunks).toString()
      resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : {} })
    })
    req.on('error', (err) => setTimeout(() => reject(err), 500)) // EPIPE may precede the answer
    write(req).catch(() => {})
  })

const multipart = { 'content-type': `multipart/form-data; boundary=${boundary}` }

const filePart = (field: string, filename: string, type = 'application/octet-stream'): string =>
  `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`
const fieldPart = (name: string, value: string): string =>
  `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
const end = `\r\n--${boundary}--\r\n`

/** A whole multipart body as one buffer. */
const body = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))

const send = (
  server: FlumenServer,
  payload: Buffer,
  headers: Record<string, string> = multipart,
): Promise<Reply> =>
  post(server, { ...headers, 'content-length': payload.length }, async (req) => {
    req.end(payload)
  })

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

describe('uploads: streaming', () => {
  it('streams 1 GiB with constant memory and the right SHA-256', async () => {
    const { server, leftovers, dir } = await start({
      limits: { fileSize: 1 << 30, totalSize: (1 << 30) + 4096 },
    })
    const chunk = randomBytes(1 << 20)
    const expected = createHash('sha256')
    for (let i = 0; i < 1024; i++) expected.update(chunk)
    const head = Buffer.from(filePart('file', 'big.bin'))
    const tail = Buffer.from(end)
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss)
    }, 50)
    const reply = await post(
      server,
      { ...multipart, 'content-length': head.length + (1 << 30) + tail.length },
      async (req) => {
        req.write(head)
        for (let i = 0; i < 1024; i++) if (!req.write(chunk)) await once(req, 'drain')
        req.end(tail)
      },
    )
    clearInterval(sampler)
    expect(reply.status).toBe(201)
    const [file] = reply.json.files as { id: string; size: number; sha256: string; name: string }[]
    expect(file).toMatchObject({ size: 1 << 30, sha256: expected.digest('hex'), name: 'big.bin' })
    expect(peak - baseline).toBeLessThan(128 * 1024 * 1024)
    expect(await leftovers()).toEqual(expect.arrayContaining([file!.id, `${file!.id}.json`]))
    await rm(join(dir, file!.id))
  }, 120_000)

  it('answers files and fields; stores under server ids with display-only names', async () => {
    const { server, dir } = await start()
    const content = randomBytes(10_000)
    const reply = await send(
      server,
      body(
        fieldPart('title', 'holiday'),
        fieldPart('tag', 'a'),
        fieldPart('tag', 'b'),
        fieldPart('__proto__', 'polluted?'),
        filePart('file', '../../etc/passwd'),
        content,
        '\r\n',
        filePart('file', '..\\..\\win.ini'),
        'windows',
        '\r\n',
        filePart('file', `${dir}-sibling/x`),
        'sibling',
        '\r\n',
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''nul%00byte%E2%80%AEexe.txt\r\n\r\n`,
        'nul',
        '\r\n',
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''gr%C3%BC%C3%9Fe%20%F0%9F%91%8B.txt\r\n\r\n`,
        'unicode',
        end,
      ),
    )
    expect(reply.json).toMatchObject({ files: expect.any(Array) })
    expect(reply.status).toBe(201)
    expect(reply.json.fields).toEqual({ title: 'holiday', tag: ['a', 'b'], ['__proto__']: 'polluted?' })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    const files = reply.json.files as {
      id: string
      name: string
      size: number
      sha256: string
      field: string
    }[]
    expect(files.map((f) => f.name)).toEqual(['passwd', 'win.ini', 'x', 'nulbyteexe.txt', 'grüße 👋.txt'])
    expect(files[0]).toMatchObject({ field: 'file', size: 10_000, sha256: sha(content) })
    for (const file of files) expect(file.id).toMatch(/^[\w-]{16}$/)
    // Nothing was written outside the storage directory or under a client name.
    const stored = (await readdir(dir)).filter((name) => !name.startsWith('.'))
    expect(stored.sort()).toEqual(files.flatMap((f) => [f.id, `${f.id}.json`]).sort())
    expect(await readFile(join(dir, files[0]!.id))).toEqual(content)
    await expect(readdir(`${dir}-sibling`)).rejects.toThrow()
  })

  it('accepts a file exactly at the limit and refuses one byte more with 413, keeping nothing', async () => {
    const { server, leftovers } = await start({ limits: { fileSize: 1000 } })
    const at = await send(server, body(filePart('file', 'a.bin'), randomBytes(1000), end))
    expect(at.status).toBe(201)
    expect((at.json.files as { size: number }[])[0]!.size).toBe(1000)
    expect(await leftovers()).toHaveLength(2)
    const over = await send(server, body(filePart('file', 'b.bin'), randomBytes(1001), end))
    expect(over.status).toBe(413)
    expect(over.json).toMatchObject({ error: { code: 'TOO_LARGE' } })
    expect(await leftovers()).toHaveLength(2)
  })

  it('parses a body sent byte by byte', async () => {
    const { server } = await start()
    const content = Buffer.from('byte by byte, each its own write')
    const payload = body(fieldPart('a', 'b'), filePart('file', 'slow.txt', 'text/plain'), content, end)
    const reply = await post(server, { ...multipart, 'content-length': payload.length }, async (req) => {
      for (const byte of payload) {
        req.write(Buffer.of(byte))
        await new Promise((resolve) => setImmediate(resolve))
      }
      req.end()
    })
    expect(reply.status).toBe(201)
    expect(reply.json.files).toEqual([expect.objectContaining({ sha256: sha(content), type: 'text/plain' })])
  })

  it('skips an empty file input (filename="")', async () => {
    const { server, leftovers } = await start()
    const reply = await send(server, body(filePart('file', ''), end))
    expect(reply.status).toBe(201)
    expect(reply.json.files).toEqual([])
    expect(await leftovers()).toEqual([])
  })
})

describe('uploads: bad input', () => {
  const cases: [string, () => Buffer, Record<string, string>, number][] = [
    ['truncated body', () => body(filePart('file', 'a.bin'), randomBytes(5000)), multipart, 400],
    [
      'no boundary in Content-Type',
      () => body(filePart('file', 'a'), 'x', end),
      { 'content-type': 'multipart/form-data' },
      400,
    ],
    [
      'a body with another boundary',
      () => Buffer.from('--other\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--other--\r\n'),
      multipart,
      400,
    ],
    [
      'a part header over 16 KiB',
      () =>
        body(
          `--${boundary}\r\nContent-Disposition: form-data; name="a"\r\nX-Big: ${'h'.repeat(17_000)}\r\n\r\nv\r\n`,
          end,
        ),
      multipart,
      400,
    ],
    ['a raw NUL in a part header', () => body(filePart('file', 'nul\u0000.txt'), 'x', end), multipart, 400],
    [
      '10,000 tiny parts',
      () => body(...Array.from({ length: 10_000 }, (_, i) => fieldPart(`f${i}`, 'x')), end),
      multipart,
      413,
    ],
    ['a field over fieldSize', () => body(fieldPart('big', 'x'.repeat(70_000)), end), multipart, 413],
    ['an empty field name', () => body(fieldPart('', 'x'), end), multipart, 400],
    [
      'a file name over 255 characters',
      () => body(filePart('file', `${'n'.repeat(300)}.txt`), 'x', end),
      multipart,
      400,
    ],
    ['not multipart', () => Buffer.from('{"a":1}'), { 'content-type': 'application/json' }, 415],
  ]

  it.each(cases)('%s → %s, no temp file, listener or fd left', async (_name, make, headers, status) => {
    const { server, leftovers, route, dir } = await start()
    await send(server, body(fieldPart('warm', 'up'), end)) // lazy dirs and pools exist before counting
    const check = await leakCheck({ dirs: [dir], emitters: [server.node] })
    const reply = await send(server, make(), headers)
    expect(reply.status).toBe(status)
    expect(reply.json).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } })
    await waitFor(() => route.stats.active === 0)
    expect(await leftovers()).toEqual([])
    await check.assertClean()
  })

  it('standard clients read every refusal: fetch and curl get the JSON 413, 401 and 415', async () => {
    const { server, dir } = await start({ limits: { fileSize: 1000, totalSize: 64 * 1024 } })
    const secret = 'a-test-secret-of-at-least-32-bytes!'
    const app = createApp({ logError: () => {} })
    app.post('/private', auth({ strategies: [jwt({ secret })] }), uploads({ storage: memoryStorage() }))
    const guarded = await serve(app, { port: 0, hostname: '127.0.0.1' })
    servers.push(guarded)
    const check = await leakCheck({ dirs: [dir] })
    const cases: [string, FetchRequest, number][] = [
      ['a file over fileSize', { url: `${server.url}upload`, body: { size: 200_000, multipart: true } }, 413],
      [
        'a body over totalSize',
        { url: `${server.url}upload`, body: { size: 8 * 2 ** 20, multipart: true } },
        413,
      ],
      ['no credentials', { url: `${guarded.url}private`, body: { size: 8 * 2 ** 20, multipart: true } }, 401],
      [
        'not multipart',
        {
          url: `${server.url}upload`,
          headers: { 'content-type': 'text/plain' },
          body: { size: 8 * 2 ** 20 },
        },
        415,
      ],
    ]
    for (const [name, request, status] of cases) {
      const outcome = await fetchOutOfProcess(request)
      expect(outcome, name).toMatchObject({ ok: true, status })
      if (outcome.ok) expect(JSON.parse(outcome.text).error.code, name).toEqual(expect.any(String))
    }
    const curled = await curl(['-F', `file=@${process.execPath}`, `${server.url}upload`])
    expect(curled).toMatchObject({ ok: true, status: 413 })
    await check.assertClean()
  })

  it('a client that aborts mid-file leaves no partial file', async () => {
    const { server, leftovers, route } = await start()
    const req = request(`${server.url}upload`, {
      method: 'POST',
      headers: { ...multipart, 'content-length': 10_000_000 },
    })
    req.on('error', () => {})
    req.write(filePart('file', 'cut.bin'))
    req.write(randomBytes(200_000))
    await waitFor(async () => (await leftovers()).length === 1)
    req.destroy()
    await waitFor(async () => (await leftovers()).length === 0 && route.stats.active === 0)
    expect(route.stats.failed).toBe(1)
  })

  it('cuts a stalled body and a slowloris trickle with 408, not a steady long upload', async () => {
    const { server, leftovers } = await start({
      idleTimeoutMs: 300,
      minBytesPerSecond: 2000,
      rateWindowMs: 400,
    })
    const stalled = await post(server, { ...multipart, 'content-length': 100_000 }, async (req) => {
      req.write(filePart('file', 'stall.bin'))
    })
    expect(stalled.status).toBe(408)
    const trickle = await post(server, { ...multipart, 'content-length': 100_000 }, async (req) => {
      req.write(filePart('file', 'trickle.bin'))
      for (let i = 0; i < 100 && !req.destroyed; i++) {
        req.write('x')
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })
    expect(trickle.status).toBe(408)
    expect(trickle.json).toMatchObject({ error: { code: 'TIMEOUT' } })
    // 1.5 s at about 40 KB/s: longer than every window, well above the minimum rate.
    const content = randomBytes(60_000)
    const payload = body(filePart('file', 'steady.bin'), content, end)
    const steady = await post(server, { ...multipart, 'content-length': payload.length }, async (req) => {
      for (let at = 0; at < payload.length; at += 2000) {
        req.write(payload.subarray(at, at + 2000))
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      req.end()
    })
    expect(steady.status).toBe(201)
    expect((steady.json.files as { sha256: string }[])[0]!.sha256).toBe(sha(content))
    await waitFor(async () => (await leftovers()).length === 2)
  }, 20_000)

  it('refuses a Content-Length over totalSize before reading, and a body that outgrows it', async () => {
    const { server, leftovers } = await start({ limits: { totalSize: 10_000 } })
    const declared = await post(server, { ...multipart, 'content-length': 20_000 }, async (req) => {
      req.write(filePart('file', 'a.bin'))
    })
    expect(declared.status).toBe(413)
    // The connection stays open while the rest of the body is discarded, so the client reads this.
    expect(declared.headers.connection).toBe('keep-alive')
    const chunked = await post(server, { ...multipart, 'transfer-encoding': 'chunked' }, async (req) => {
      req.write(filePart('file', 'b.bin'))
      for (let i = 0; i < 20 && !req.destroyed; i++) req.write(randomBytes(1000))
      req.end(end)
    })
    expect(chunked.status).toBe(413)
    await waitFor(async () => (await leftovers()).length === 0)
  })
})

describe('uploads: types, storage, progress, auth', () => {
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(200)])

  it('checks types by magic bytes, not by the declared Content-Type', async () => {
    const { server, leftovers } = await start({ allowedTypes: ['image/png'] })
    const real = await send(server, body(filePart('file', 'photo.txt', 'text/plain'), png, end))
    expect(real.status).toBe(201)
    expect((real.json.files as { type: string }[])[0]!.type).toBe('image/png')
    const fake = await send(
      server,
      body(filePart('file', 'evil.png', 'image/png'), '<script>alert(1)</script>', end),
    )
    expect(fake.status).toBe(415)
    const tiny = await send(server, body(filePart('file', 'tiny.png', 'image/png'), 'x', end))
    expect(tiny.status).toBe(415)
    expect(await leftovers()).toHaveLength(2)
  })

  it('works the same on memoryStorage', async () => {
    const storage = memoryStorage({ maxBytes: 5000 })
    const { server } = await start({}, storage)
    const content = randomBytes(3000)
    const reply = await send(server, body(filePart('file', 'm.bin'), content, end))
    expect(reply.status).toBe(201)
    const id = (reply.json.files as { id: string }[])[0]!.id
    const chunks: Buffer[] = []
    for await (const chunk of (await storage.read(id))!) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks)).toEqual(content)
    expect(await storage.info(id)).toMatchObject({ size: 3000, name: 'm.bin' })
    // Over the storage's own bound: a server error, and what was taken is given back.
    const full = await send(server, body(filePart('file', 'n.bin'), randomBytes(3000), end))
    expect(full.status).toBe(500)
    expect(await storage.info(id)).toBeDefined()
    expect(storage.bytes).toBe(3000)
  })

  it('publishes throttled progress and a final event to the topic the app chooses, behind auth', async () => {
    const secret = 'uploads-test-secret-at-least-32-bytes!!'
    const authn = auth({ strategies: [jwt({ secret })] })
    const hub = createHub({ presence: false, authenticate: authn.verifyToken })
    const dir = await mkdtemp(join(tmpdir(), 'flumen-uploads-test-'))
    dirs.push(dir)
    const route = uploads({
      storage: diskStorage({ dir }),
      limits: { fileSize: 5_000_000 },
      progress: { publisher: hub, topic: (c) => `user:${c.var.user.id}`, intervalMs: 20 },
    })
    const app = createApp({ logError: () => {} })
    app.post('/upload', authn, route)
    app.get('/ws', authn, hub.websocket())
    const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
    servers.push(server)
    const token = await new SignJWT({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret))

    const unauthenticated = await send(server, body(filePart('file', 'a.bin'), 'x', end))
    expect(unauthenticated.status).toBe(401)

    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, 'flumen.v1', {
      headers: { authorization: `Bearer ${token}` },
    })
    sockets.push(ws)
    await once(ws, 'open')
    const events: Record<string, unknown>[] = []
    const stored = new Set<unknown>()
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as {
        type: string
        data?: Record<string, unknown>
        offset?: number
      }
      if (message.type !== 'message') return
      events.push(message.data!)
      if (message.offset !== undefined) stored.add(message.data!.type)
    })
    ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic: 'user:alice' }))
    await once(ws, 'message')

    const content = randomBytes(2_000_000)
    const payload = body(filePart('file', 'p.bin'), content, end)
    const headers = { ...multipart, authorization: `Bearer ${token}`, 'upload-id': 'client-42' }
    const reply = await post(server, { ...headers, 'content-length': payload.length }, async (req) => {
      for (let at = 0; at < payload.length; at += 100_000) {
        req.write(payload.subarray(at, at + 100_000))
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      req.end()
    })
    expect(reply.status).toBe(201)
    expect(reply.json.uploadId).toBe('client-42')
    await waitFor(() => events.some((event) => event.type === 'upload-done'))
    const progress = events.filter((event) => event.type === 'upload-progress')
    expect(progress.length).toBeGreaterThan(2)
    expect(progress.length).toBeLessThan(200)
    const received = progress.map((event) => event.received as number)
    expect(received).toEqual([...received].sort((a, b) => a - b))
    expect(progress.at(-1)).toMatchObject({
      uploadId: 'client-42',
      received: payload.length,
      total: payload.length,
    })
    expect(events.at(-1)).toMatchObject({
      type: 'upload-done',
      files: [expect.objectContaining({ name: 'p.bin' })],
    })
    // Progress ticks are volatile (nothing to recover later); the outcome is stored.
    expect([...stored]).toEqual(['upload-done'])
    const { position } = await hub.engine.history('user:alice')
    const kept = await hub.engine.history('user:alice', { ...position, offset: 0 })
    expect(kept.messages.map((m) => (JSON.parse(m.data) as { type: string }).type)).toEqual(['upload-done'])

    const over = await send(server, body(filePart('file', 'big.bin'), randomBytes(5_000_001), end), {
      ...headers,
      'upload-id': 'client-43',
    })
    expect(over.status).toBe(413)
    await waitFor(() => events.some((event) => event.type === 'upload-failed'))
    expect(events.find((event) => event.type === 'upload-failed')).toMatchObject({
      uploadId: 'client-43',
      error: { code: 'TOO_LARGE' },
    })
  })

  it('checks its options up front', () => {
    expect(() => uploads({ limits: { fileSize: 1.5 } })).toThrow(/positive integer/)
    expect(() => uploads({ limits: { nope: 1 } as never })).toThrow(/unknown limit/)
    expect(() => uploads({ idleTimeoutMs: -1 })).toThrow(/idleTimeoutMs must be an integer >= 0/)
    expect(() => uploads({ rateWindowMs: 0 })).toThrow(/rateWindowMs must be a positive integer/)
    expect(() => diskStorage({ dir: '' })).toThrow(/dir/)
  })
})
