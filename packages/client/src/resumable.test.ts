import { createHash, randomBytes } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import type { AddressInfo, Socket } from 'node:net'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import type { StoredFile } from '@flumen/uploads'
import { diskStorage, tus } from '@flumen/uploads'
import { afterEach, describe, expect, it } from 'vitest'
import type { ResumeStore, UploadProgress } from './node.js'
import { FlumenClientError, resumableUpload } from './node.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const memoryStore = (): ResumeStore & { items: Map<string, string> } => {
  const items = new Map<string, string>()
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  }
}

interface Started {
  /** The endpoint through a TCP proxy that can cut a connection, as a network drop does. */
  endpoint: string
  dir: string
  completed: { file: StoredFile; metadata: Record<string, string> }[]
  /** The Upload-Offset of every PATCH the server got, in order. */
  patchOffsets: number[]
  /** Resolves once the server has answered this many PATCHes (a cut one included). */
  patchesAnswered(count: number): Promise<void>
  /** Cuts the next connection once it has carried this many more bytes to the server. */
  cutAfter(bytes: number): void
}

const start = async (options: { maxSize?: number } = {}): Promise<Started> => {
  const dir = await mkdtemp(join(tmpdir(), 'flumen-client-tus-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const completed: Started['completed'] = []
  const patchOffsets: number[] = []
  let answered = 0
  const answers = new EventEmitter()
  const app = createApp({ logError: () => {} })
  app.use('/files/*', async (c, next) => {
    if (c.req.method !== 'PATCH') return next()
    patchOffsets.push(Number(c.req.header('upload-offset')))
    await next()
    answered++
    answers.emit('answered')
  })
  app.route(
    '/files',
    tus({
      storage: diskStorage({ dir }),
      owner: () => undefined,
      ...(options.maxSize && { maxSize: options.maxSize }),
      onComplete: (file, _c, metadata) => void completed.push({ file, metadata }),
    }),
  )
  const server: FlumenServer = await serve(app, { port: 0, hostname: '127.0.0.1' })
  cleanups.push(() => server.close({ timeoutMs: 200 }))

  let cut: number | undefined
  const sockets = new Set<Socket>()
  const proxy = createServer((downstream) => {
    const upstream = connect(server.port, '127.0.0.1')
    sockets.add(downstream).add(upstream)
    let carried = 0
    // Set by a cut: what was carried still reaches the server (end() flushes it), however busy the
    // machine; destroying at once could drop writes still queued here, and the server would keep nothing.
    let flushing = false
    downstream.on('data', (chunk: Buffer) => {
      if (flushing) return
      carried += chunk.length
      upstream.write(chunk)
      if (cut !== undefined && carried >= cut) {
        cut = undefined
        flushing = true
        upstream.end()
        downstream.destroy()
      }
    })
    upstream.pipe(downstream)
    const close = (): void => {
      downstream.destroy()
      if (!flushing || upstream.writableFinished) upstream.destroy()
      sockets.delete(downstream)
      if (upstream.destroyed) sockets.delete(upstream)
    }
    downstream.on('close', close).on('error', close)
    upstream.on('close', close).on('error', close)
  })
  proxy.listen(0, '127.0.0.1')
  await once(proxy, 'listening')
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy()
    proxy.close()
    await once(proxy, 'close')
  })
  const { port } = proxy.address() as AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}/files`,
    dir,
    completed,
    patchOffsets,
    patchesAnswered: async (count) => {
      const signal = AbortSignal.timeout(5000)
      while (answered < count) await once(answers, 'answered', { signal })
    },
    cutAfter: (bytes) => {
      cut = bytes
    },
  }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

describe('resumableUpload (tus)', () => {
  it('uploads a file in chunks with its metadata, and progress that only goes forward', async () => {
    const started = await start()
    const bytes = randomBytes(3_000_000)
    const file = new File([bytes], 'report.bin', { type: 'application/octet-stream', lastModified: 1 })
    const progress: UploadProgress[] = []
    const result = await resumableUpload(started.endpoint, file, {
      chunkSize: 1_000_000,
      metadata: { room: 'team' },
      onProgress: (p) => progress.push(p),
      store: false,
    })
    expect(result).toMatchObject({ size: 3_000_000, resumedFrom: 0 })
    expect(result.url).toMatch(/\/files\/[\w-]+$/)
    expect(started.completed).toHaveLength(1)
    expect(started.completed[0]!.file).toMatchObject({
      name: 'report.bin',
      size: 3_000_000,
      sha256: sha256(bytes),
    })
    expect(started.completed[0]!.metadata).toMatchObject({ room: 'team', filename: 'report.bin' })
    expect(started.patchOffsets).toEqual([0, 1_000_000, 2_000_000])
    const loaded = progress.map((p) => p.loaded)
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b))
    expect(progress.at(-1)).toEqual({ loaded: 3_000_000, total: 3_000_000 })
  })

  it('goes on from what the server kept after the connection drops mid-chunk', async () => {
    const started = await start()
    const bytes = randomBytes(2_000_000)
    const store = memoryStore()
    // Through the proxy: the POST first, then the PATCH, cut once 700 KB went out.
    started.cutAfter(700_000)
    const result = await resumableUpload(started.endpoint, new Blob([bytes]), {
      chunkSize: 4_000_000,
      retryDelaysMs: [50, 100, 200, 400, 800],
      store,
    })
    expect(result.size).toBe(2_000_000)
    expect(started.completed[0]!.file.sha256).toBe(sha256(bytes))
    // The last PATCH started from what the server kept of the cut one, not from zero.
    expect(started.patchOffsets[0]).toBe(0)
    expect(started.patchOffsets.at(-1)).toBeGreaterThan(0)
    expect(store.items.size).toBe(0) // a finished upload is forgotten
  })

  it('resumes an upload another call left unfinished (a reload), from the same file', async () => {
    const started = await start()
    const bytes = randomBytes(1_500_000)
    const file = new File([bytes], 'movie.bin', { lastModified: 42 })
    const store = memoryStore()
    started.cutAfter(600_000)
    // The page goes away mid-file: no retries, nothing removed.
    const first = resumableUpload(started.endpoint, file, { store, retryDelaysMs: [], chunkSize: 2_000_000 })
    await expect(first).rejects.toMatchObject({ code: 'CONNECTION_REFUSED' })
    expect(store.items.size).toBe(1)
    // The reload comes after the server has kept what arrived of the cut PATCH; sooner, the server
    // may still be writing it, and the resume starts from less (a busy CI machine did).
    await started.patchesAnswered(1)
    const again = await resumableUpload(
      started.endpoint,
      new File([bytes], 'movie.bin', { lastModified: 42 }),
      {
        store,
        retryDelaysMs: [50, 100, 200, 400, 800],
      },
    )
    // What the server kept of the cut PATCH (part of the 600 KB was still in buffers) is not sent again.
    expect(again.resumedFrom).toBeGreaterThan(0)
    expect(started.patchOffsets[0]).toBe(0)
    for (const offset of started.patchOffsets.slice(1))
      expect(offset).toBeGreaterThanOrEqual(again.resumedFrom)
    expect(started.completed).toHaveLength(1)
    expect(started.completed[0]!.file.sha256).toBe(sha256(bytes))
    // Another file of the same name but another size is another upload.
    const other = await resumableUpload(started.endpoint, new File([bytes.subarray(0, 10)], 'movie.bin'), {
      store,
    })
    expect(other.resumedFrom).toBe(0)
  })

  it('stops for good on a refusal, and deletes the upload on abort', async () => {
    const started = await start({ maxSize: 1000 })
    const refused = resumableUpload(started.endpoint, new Blob([randomBytes(2000)]), {
      store: false,
      retryDelaysMs: [10_000], // a refusal must not wait for it
    })
    await expect(refused).rejects.toMatchObject({ code: 'HTTP_ERROR', status: 413 })
    expect(await readdir(started.dir, { recursive: true })).not.toContainEqual(
      expect.stringMatching(/\.bin$/),
    )

    const big = await start()
    const controller = new AbortController()
    const store = memoryStore()
    const aborted = resumableUpload(big.endpoint, new Blob([randomBytes(3_000_000)]), {
      store,
      chunkSize: 100_000,
      signal: controller.signal,
      onProgress: ({ loaded }) => loaded >= 300_000 && controller.abort(),
    })
    await expect(aborted).rejects.toBeInstanceOf(FlumenClientError)
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' })
    expect(store.items.size).toBe(0)
    const partials = await readdir(join(big.dir, '.tus')).catch(() => [])
    expect(partials).toEqual([])
    expect(big.completed).toEqual([])
    await expect(resumableUpload(big.endpoint, new Blob([]), { chunkSize: 0 })).rejects.toThrow('chunkSize')
  })
})
