import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { curl, leakCheck, waitFor } from '@flumen/testing'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import type { FileStore, StoredFile } from './index.js'
import { diskStorage, download, parseRange } from './index.js'

const servers: FlumenServer[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 500 })))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

/** A disk storage holding one file of `size` random bytes, and a server with the download route. */
const start = async (
  size: number,
  options: { plainHono?: boolean; authorize?: (file: StoredFile) => boolean } = {},
): Promise<{ server: FlumenServer; file: StoredFile; content: Buffer; reads: () => number; dir: string }> => {
  const dir = await mkdtemp(join(tmpdir(), 'flumen-download-'))
  dirs.push(dir)
  const disk = diskStorage({ dir })
  const content = randomBytes(size)
  const sink = await disk.create({
    id: 'file1',
    field: 'file',
    name: 'résumé "final".html',
    type: 'text/html',
  })
  sink.stream.end(content)
  await once(sink.stream, 'finish')
  const file: StoredFile = {
    id: 'file1',
    field: 'file',
    name: 'résumé "final".html',
    size,
    type: 'text/html',
    sha256: createHash('sha256').update(content).digest('hex'),
  }
  await sink.commit(file)
  let reads = 0
  const storage: Pick<FileStore, 'info' | 'read'> = {
    info: (id) => disk.info(id),
    read: (id, range) => {
      reads++
      return disk.read(id, range)
    },
  }
  const route = download({ storage, ...(options.authorize && { authorize: options.authorize }) })
  const app = options.plainHono ? new Hono().get('/files/:id', route) : createApp().get('/files/:id', route)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1' })
  servers.push(server)
  return { server, file, content, reads: () => reads, dir }
}

describe('download', () => {
  it('sends the file with safe headers: attachment, nosniff, a sandboxing CSP, its ETag', async () => {
    const { server, file, content } = await start(10_000)
    const res = await fetch(`${server.url}files/file1`)
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true)
    expect(res.headers.get('content-length')).toBe('10000')
    expect(res.headers.get('etag')).toBe(`"${file.sha256}"`)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox")
    expect(res.headers.get('accept-ranges')).toBe('bytes')
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="r_sum_ _final_.html"; filename*=UTF-8''${encodeURIComponent('résumé "final".html')}`,
    )
  })

  it('answers HEAD without opening the file: 100 HEADs hold no fd', async () => {
    const { server, reads } = await start(1_000_000)
    const check = await leakCheck()
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${server.url}files/file1`, { method: 'HEAD' })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-length')).toBe('1000000')
    }
    expect(reads()).toBe(0)
    await check.assertClean()
  })

  it('serves one byte range with 206, and 416 outside the file', async () => {
    const { server, content } = await start(10_000)
    const get = (range: string, extra: Record<string, string> = {}): Promise<Response> =>
      fetch(`${server.url}files/file1`, { headers: { range, ...extra } })
    const middle = await get('bytes=100-199')
    expect(middle.status).toBe(206)
    expect(middle.headers.get('content-range')).toBe('bytes 100-199/10000')
    expect(Buffer.from(await middle.arrayBuffer()).equals(content.subarray(100, 200))).toBe(true)
    const suffix = await get('bytes=-10')
    expect(suffix.headers.get('content-range')).toBe('bytes 9990-9999/10000')
    expect(Buffer.from(await suffix.arrayBuffer()).equals(content.subarray(9990))).toBe(true)
    const open = await get('bytes=9000-')
    expect((await open.arrayBuffer()).byteLength).toBe(1000)
    const outside = await get('bytes=20000-')
    expect(outside.status).toBe(416)
    expect(outside.headers.get('content-range')).toBe('bytes */10000')
    expect((await outside.json()).error.code).toBe('RANGE_NOT_SATISFIABLE')
    // Several ranges, or an If-Range for another version: the whole file.
    expect((await get('bytes=0-1,5-6')).status).toBe(200)
    expect((await get('bytes=0-1', { 'if-range': '"other"' })).status).toBe(200)
    // curl resumes a download the same way.
    const curled = await curl(['-r', '9998-', `${server.url}files/file1`])
    expect(curled).toMatchObject({ ok: true, status: 206 })
  })

  it('answers If-None-Match with its ETag 304, without a body', async () => {
    const { server, file, reads } = await start(10_000)
    const res = await fetch(`${server.url}files/file1`, {
      headers: { 'if-none-match': `W/"x", "${file.sha256}"` },
    })
    expect(res.status).toBe(304)
    expect(res.headers.get('etag')).toBe(`"${file.sha256}"`)
    expect(reads()).toBe(0)
  })

  it('closes the file stream when the client leaves mid-download', async () => {
    const { server, reads } = await start(64 * 2 ** 20)
    const check = await leakCheck()
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const req = request(`${server.url}files/file1`, (res) => {
          res.once('data', () => {
            req.destroy()
            resolve()
          })
        })
        req.on('error', () => {})
        req.end()
      })
    }
    await waitFor(() => reads() === 20)
    await check.assertClean()
  })

  it('answers an unknown or refused file 404, the same in a plain new Hono()', async () => {
    const { server } = await start(10, { plainHono: true, authorize: () => false })
    const refused = await fetch(`${server.url}files/file1`)
    expect(refused.status).toBe(404)
    expect(await refused.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No such file' } })
    expect((await fetch(`${server.url}files/nope`)).status).toBe(404)
  })

  it('parses ranges as RFC 9110 says', () => {
    expect(parseRange(undefined, 10)).toBeUndefined()
    expect(parseRange('bytes=0-0', 10)).toEqual({ start: 0, end: 0 })
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 })
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 })
    expect(parseRange('bytes=-30', 10)).toEqual({ start: 0, end: 9 })
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable')
    expect(parseRange('bytes=-0', 10)).toBe('unsatisfiable')
    expect(parseRange('bytes=5-2', 10)).toBeUndefined()
    expect(parseRange('items=0-1', 10)).toBeUndefined()
    expect(() => download({ storage: {} as never })).toThrow(/storage must have/)
  })
})
