import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Hub } from '@flumen/broadcast'
import { createHub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { waitFor } from '@flumen/testing'
import { diskStorage, uploads } from '@flumen/uploads'
import { build } from 'esbuild'
import { afterEach, describe, expect, it } from 'vitest'
import type { StreamEvent, UploadProgress } from './node.js'
import { openEventStream, uploadFile } from './node.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const waitForPeers = async (route: { peers: ReadonlySet<unknown> }, count: number): Promise<void> => {
  const deadline = Date.now() + 5000
  while (route.peers.size < count) {
    if (Date.now() > deadline) throw new Error('no stream connected')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const start = async (): Promise<{
  hub: Hub
  server: FlumenServer
  dir: string
  route: ReturnType<typeof uploads>
  sseRoute: ReturnType<Hub['sse']>
}> => {
  const dir = await mkdtemp(join(tmpdir(), 'flumen-client-test-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const hub = createHub({ presence: false, logError: () => {} })
  const route = uploads({ storage: diskStorage({ dir }), limits: { fileSize: 50_000_000 } })
  const app = createApp({ logError: () => {} })
  const sseRoute = hub.sse({ heartbeatMs: false, retryMs: 50 })
  app.get('/sse', sseRoute)
  app.get('/denied', (c) => c.json({ error: { code: 'FORBIDDEN', message: 'no' } }, 403))
  app.post('/upload', route)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  cleanups.push(() => server.close({ timeoutMs: 200 }))
  return { hub, server, dir, route, sseRoute }
}

const take = async (stream: AsyncIterable<StreamEvent>, count: number): Promise<StreamEvent[]> => {
  const events: StreamEvent[] = []
  if (count === 0) return events
  for await (const event of stream) {
    events.push(event)
    if (events.length === count) break
  }
  return events
}

describe('openEventStream', () => {
  it('reads hub events and resumes with Last-Event-ID after the server ends the stream', async () => {
    const { hub, server, sseRoute } = await start()
    const stream = openEventStream(`${server.url}sse?topic=news`)
    cleanups.push(() => stream.close())
    const iterator = stream[Symbol.asyncIterator]()
    /** The next hub message (each connection starts with an `event: position`). */
    const next = async (): Promise<StreamEvent> => {
      for (;;) {
        const event = (await iterator.next()).value as StreamEvent
        if (event.event === 'message') return event
        expect(event.event).toBe('position')
      }
    }
    const firstEvent = next()
    await waitForPeers(sseRoute, 1)
    await hub.publish('news', 'one')
    const first = await firstEvent
    expect(JSON.parse(first.data)).toMatchObject({ topic: 'news', data: 'one', offset: 1 })
    expect(first.id).toMatch(/^news~[\w-]+~1$/)
    // The server ends the stream (as at token expiry); two messages go out while it is away.
    for (const peer of sseRoute.peers) peer.close()
    await hub.publish('news', 'two')
    await hub.publish('news', 'three')
    const [second, third] = [await next(), await next()]
    expect([JSON.parse(second.data).data, JSON.parse(third.data).data]).toEqual(['two', 'three'])
    expect(stream.lastEventId).toMatch(/~3$/)
    stream.close()
    await iterator.return?.(undefined)
  })

  it('closes the connection when the consumer stops iterating', async () => {
    const { hub, server, sseRoute } = await start()
    const stream = openEventStream(`${server.url}sse?topic=news`)
    cleanups.push(() => stream.close())
    const first = take(stream, 2)
    await waitForPeers(sseRoute, 1)
    await hub.publish('news', 'one')
    expect((await first).map((event) => event.event)).toEqual(['position', 'message'])
    // `break` ended the loop without close(): the server sees the stream go.
    await waitFor(() => sseRoute.peers.size === 0, 5_000, 'the stream stayed open')
  })

  it('stops with HTTP_ERROR on a refused stream', async () => {
    const { server } = await start()
    const stream = openEventStream(`${server.url}denied`)
    await expect(take(stream, 1)).rejects.toMatchObject({ code: 'HTTP_ERROR', status: 403 })
  })
})

describe('uploadFile (Node)', () => {
  it('streams a file with progress up to the total and gets the stored record', async () => {
    const { server } = await start()
    const data = randomBytes(3_000_000)
    const progress: UploadProgress[] = []
    const reply = await uploadFile(
      `${server.url}upload`,
      { name: 'grüße.bin', data },
      {
        fields: { room: 'lobby' },
        onProgress: (p) => progress.push(p),
      },
    )
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({
      files: [{ name: 'grüße.bin', size: 3_000_000 }],
      fields: { room: 'lobby' },
    })
    expect(progress.length).toBeGreaterThan(10)
    const loaded = progress.map((p) => p.loaded)
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b))
    expect(progress.at(-1)!.loaded).toBe(progress.at(-1)!.total)
    // From a stream of unknown size (chunked).
    const streamed = await uploadFile(`${server.url}upload`, {
      name: 's.bin',
      data: Readable.from([data.subarray(0, 1000), data.subarray(1000, 5000)]),
    })
    expect(streamed.body).toMatchObject({ files: [{ size: 5000 }] })
  })

  it('aborts: ABORTED for the caller, nothing kept on the server', async () => {
    const { server, dir, route } = await start()
    const controller = new AbortController()
    let aborted = false
    const upload = uploadFile(
      `${server.url}upload`,
      { name: 'big.bin', data: randomBytes(20_000_000) },
      {
        signal: controller.signal,
        onProgress: (p) => {
          if (!aborted && p.loaded > 2_000_000) {
            aborted = true
            controller.abort()
          }
        },
      },
    )
    await expect(upload).rejects.toMatchObject({ code: 'ABORTED' })
    const deadline = Date.now() + 5000
    while ((route.stats.failed === 0 || route.stats.active > 0) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20))
    expect(route.stats.failed).toBe(1)
    expect((await readdir(dir)).filter((name) => !name.startsWith('.'))).toEqual([])
    expect(await readdir(join(dir, '.partial'))).toEqual([])
  })
})

describe('browser build', () => {
  it('bundles for the browser without ws or Node built-ins', async () => {
    const result = await build({
      entryPoints: [join(import.meta.dirname, 'index.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      minify: true,
      logLevel: 'silent',
    })
    const code = result.outputFiles[0]!.text
    expect(code).not.toMatch(/from\s*["'](ws|node:)/)
    expect(code.length).toBeLessThan(40_000)
    expect(code).toContain('flumen.v1')
  })
})
