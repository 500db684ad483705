// Property: whatever the sizes around each limit and however the body is cut and paced, an upload
// gets the documented status, the process never crashes, and a refused one leaves no file behind.

import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { waitFor } from '@flumen/testing'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FileStore } from './index.js'
import { diskStorage, memoryStorage, uploads } from './index.js'

const boundary = 'propertyBoundary7'
const limits = { fileSize: 2048, fieldSize: 512, totalSize: 6000 }
const runs = Number(process.env.FLUMEN_PROPERTY_RUNS ?? 200)

interface Target {
  server: FlumenServer
  storage: FileStore & { readonly bytes?: number }
  /** Files the storage holds now (partial ones included). */
  held(): Promise<number>
}

const targets: Record<'disk' | 'memory', Target> = {} as never
const dirs: string[] = []
const uncaught: unknown[] = []
const onUncaught = (err: unknown): void => {
  uncaught.push(err)
}

beforeAll(async () => {
  process.on('uncaughtException', onUncaught)
  const dir = await mkdtemp(join(tmpdir(), 'flumen-property-'))
  dirs.push(dir)
  const disk = diskStorage({ dir })
  const memory = memoryStorage()
  for (const [kind, storage] of [
    ['disk', disk],
    ['memory', memory],
  ] as const) {
    const app = createApp({ logError: (err) => uncaught.push(err) })
    app.post('/upload', uploads({ storage, limits }))
    const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: (err) => uncaught.push(err) })
    const held =
      kind === 'disk'
        ? async () => {
            const top = (await readdir(dir)).filter((name) => !name.startsWith('.'))
            return top.length + (await readdir(join(dir, '.partial')).catch(() => [])).length
          }
        : async () => memory.bytes
    targets[kind] = { server, storage, held }
  }
})

afterAll(async () => {
  process.off('uncaughtException', onUncaught)
  await Promise.all(Object.values(targets).map((target) => target.server.close({ timeoutMs: 500 })))
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

/** A size near `limit`: at it, just under, just over, or anywhere up to twice it. */
const around = (limit: number): fc.Arbitrary<number> =>
  fc.oneof(
    fc.constantFrom(limit - 1, limit, limit + 1, limit + 2),
    fc.integer({ min: Math.max(0, limit - 16), max: limit + 16 }),
    fc.integer({ min: 0, max: 2 * limit }),
  )

const upload = fc.record({
  storage: fc.constantFrom<'disk' | 'memory'>('disk', 'memory'),
  files: fc.array(around(limits.fileSize), { minLength: 1, maxLength: 3 }),
  field: fc.option(around(limits.fieldSize), { nil: undefined }),
  /** Where the body is cut into writes (fractions of its length) and whether to pause after each. */
  cuts: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean()), { maxLength: 8 }),
  pauseMs: fc.integer({ min: 1, max: 15 }),
  declareLength: fc.boolean(),
})

const build = (files: readonly number[], field: number | undefined): { body: Buffer; contents: Buffer[] } => {
  const parts: Buffer[] = []
  if (field !== undefined)
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${'n'.repeat(field)}\r\n`,
      ),
    )
  const contents = files.map((size, i) => Buffer.alloc(size, 97 + i))
  contents.forEach((content, i) => {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"; filename="f${i}.bin"\r\n\r\n`,
      ),
      content,
      Buffer.from('\r\n'),
    )
  })
  parts.push(Buffer.from(`--${boundary}--\r\n`))
  return { body: Buffer.concat(parts), contents }
}

interface Answer {
  status: number
  json: { files?: { size: number; sha256: string; id: string }[]; error?: { code: string } }
}

/** Writes `body` in pieces with pauses; resolves with the answer, whatever the server did meanwhile. */
const send = (
  server: FlumenServer,
  body: Buffer,
  cuts: readonly (readonly [number, boolean])[],
  pauseMs: number,
  declareLength: boolean,
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = request(`${server.url}upload`, {
      method: 'POST',
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        ...(declareLength ? { 'content-length': body.length } : { 'transfer-encoding': 'chunked' }),
      },
    })
    req.on('response', async (res) => {
      let text = ''
      for await (const chunk of res) text += chunk
      resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} })
    })
    req.on('error', reject)
    const points = [...new Set(cuts.map(([at]) => Math.floor(at * body.length)))].sort((a, b) => a - b)
    void (async () => {
      let from = 0
      for (const [i, point] of points.entries()) {
        if (req.destroyed) return
        req.write(body.subarray(from, point))
        from = point
        if (cuts[i]?.[1]) await new Promise((r) => setTimeout(r, pauseMs))
      }
      if (!req.destroyed) req.end(body.subarray(from))
    })()
  })

describe('uploads: sizes around every limit × any chunking × both storages', () => {
  it('always answers the documented status, never crashes, and keeps nothing it refused', async () => {
    await fc.assert(
      fc.asyncProperty(upload, async ({ storage, files, field, cuts, pauseMs, declareLength }) => {
        const target = targets[storage]
        const { body, contents } = build(files, field)
        const tooLarge =
          files.some((size) => size > limits.fileSize) ||
          (field !== undefined && field > limits.fieldSize) ||
          body.length > limits.totalSize
        const answer = await send(target.server, body, cuts, pauseMs, declareLength)
        expect(uncaught).toEqual([])
        if (tooLarge) {
          expect(answer.status).toBe(413)
          expect(answer.json.error?.code).toBe('TOO_LARGE')
          await waitFor(async () => (await target.held()) === 0, 2_000, 'a refused upload left files')
          return
        }
        expect(answer.status).toBe(201)
        const stored = answer.json.files ?? []
        expect(stored.map((file) => file.size)).toEqual(files)
        for (const [i, file] of stored.entries()) {
          expect(file.sha256).toBe(createHash('sha256').update(contents[i]!).digest('hex'))
          await target.storage.remove(file.id)
        }
        expect(await target.held()).toBe(0)
      }),
      { seed: 20261201, numRuns: runs, endOnFailure: true },
    )
  }, 120_000)
})
