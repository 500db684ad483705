import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { afterEach, describe, expect, it } from 'vitest'
import type { StoredFile, TusOptions } from './index.js'
import { diskStorage, tus } from './index.js'

const servers: FlumenServer[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 500 })))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

const start = async (options: Partial<TusOptions> = {}) => {
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
    expect((await call('HEAD', location)).status).toBe(404) // complete: no longer a partial upload
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
      const req = request(`${server.url.replace(/\/$/, '')}${location}`, {
        method: 'PATCH',
        headers: {
          'tus-resumable': '1.0.0',
          'content-type': 'application/offset+octet-stream',
          'upload-offset': '0',
          'content-length': content.length,
        },
      })
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
