// The tus 1.0 protocol on a resumable store: creation, HEAD, PATCH (streamed, paced, checksummed),
// termination and expiry, with owners, quotas and progress.
// A little over 350 lines: the protocol's five methods share their checks (owner, expiry, offsets)
// and reply helpers; split apart they would pass the same half-dozen values around.
import { createHash } from 'node:crypto'
import type { Writable } from 'node:stream'
import type { FlumenPlugin } from '@flumen/core'
import { bindingsOf, createId } from '@flumen/core'
import type { Context, Env } from 'hono'
import { Hono } from 'hono'
import type { UploadStats } from './multipart.js'
import { displayName } from './names.js'
import { progressReporting } from './progress.js'
import { OwnerQuotas } from './quotas.js'
import { fileType, sniffBytes, sniffType } from './sniff.js'
import type { PartialUpload, StoredFile } from './storage.js'
import { encodeMetadata, parseMetadata } from './tus-metadata.js'
import type { TusOptions } from './tus-options.js'
import { resolveTusOptions } from './tus-options.js'

const tusVersion = '1.0.0'
const extensions = 'creation,creation-with-upload,termination,expiration,checksum'
const offsetType = 'application/offset+octet-stream'

const errorJson = (code: string, message: string): string => JSON.stringify({ error: { code, message } })

/** The tus app: mount it with `app.route(path, …)`. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export type TusApp<E extends Env = any> = Hono<E> & {
  /** Removes expired unfinished uploads now (it also runs on a timer); resolves with how many. */
  sweep(): Promise<number>
  /**
   * PATCHes being received (`active`), uploads completed and failed (storage errors, refused
   * types), and the bytes of completed files: the counters `uploads()` has.
   */
  readonly stats: Readonly<UploadStats>
}

/**
 * The tus 1.0 resumable upload protocol (core, creation, creation-with-upload, termination,
 * expiration, checksum with sha256) on a storage adapter: `app.route('/files/tus', tus({ storage }))`,
 * behind your auth middleware. Standard tus clients (tus-js-client, Uppy) work with it.
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const tus = <E extends Env = any>(options: TusOptions<E>): TusApp<E> => {
  const { storage, maxSize, expiresInMs, pace, maxUploadsPerOwner, maxBytesPerOwner, ownerOf, allowedTypes } =
    resolveTusOptions(options)
  const reporting = progressReporting('tus', options.progress)
  const quotas = new OwnerQuotas(storage)
  /** Uploads with a PATCH in progress: a second one at the same time is a conflict. */
  const busy = new Set<string>()
  const counts = { completed: 0, failed: 0, bytes: 0 }
  const stats: Readonly<UploadStats> = {
    get active() {
      return busy.size
    },
    get completed() {
      return counts.completed
    },
    get failed() {
      return counts.failed
    },
    get bytes() {
      return counts.bytes
    },
  }

  const app = new Hono<E>()
  const common = { 'Tus-Resumable': tusVersion, 'Cache-Control': 'no-store' }

  const reply = (status: number, headers: Record<string, string> = {}, body?: string): Response =>
    new Response(body ?? null, {
      status,
      headers: { ...common, ...(body !== undefined && { 'Content-Type': 'application/json' }), ...headers },
    })

  const expiresHeader = (upload: PartialUpload): Record<string, string> => ({
    'Upload-Expires': new Date(upload.expiresAt).toUTCString(),
  })

  const sweep = async (): Promise<number> => {
    let removed = 0
    for (const id of await storage.listPartials()) {
      const found = await storage.partial(id)
      if (!busy.has(id) && (!found || found.upload.expiresAt <= Date.now())) {
        await storage.removePartial(id)
        quotas.release(id)
        removed++
      }
    }
    return removed
  }
  let sweeper: NodeJS.Timeout | undefined
  const plugin: FlumenPlugin = {
    name: 'flumen-tus',
    stop: () => clearInterval(sweeper),
  }

  const notFound = (): Response => reply(404, {}, errorJson('NOT_FOUND', 'No such upload'))

  /**
   * A live upload of the request's owner, or the response that says why there is none. Another
   * owner's upload is answered as one that does not exist.
   */
  const load = async (
    c: Context<E>,
    id: string,
  ): Promise<{ upload: PartialUpload; offset: number } | Response> => {
    const found = await storage.partial(id).catch(() => undefined)
    if (!found || found.upload.owner !== ownerOf(c)) return notFound()
    if (found.upload.expiresAt <= Date.now()) {
      if (!busy.has(id)) {
        await storage.removePartial(id).catch(() => {})
        quotas.release(id)
      }
      return reply(410, {}, errorJson('GONE', 'The upload expired'))
    }
    return found
  }

  app.use('*', async (c, next) => {
    const { flumen } = bindingsOf(c)
    if (flumen && !sweeper) {
      flumen.register(plugin)
      // Every 1–10 minutes: expired uploads are refused (410) on access anyway.
      sweeper = setInterval(
        () => void sweep().catch(() => {}),
        Math.min(Math.max(expiresInMs, 60_000), 600_000),
      )
      sweeper.unref()
    }
    if (c.req.method === 'OPTIONS') return next()
    if (c.req.header('tus-resumable') !== tusVersion)
      return reply(
        412,
        { 'Tus-Version': tusVersion },
        errorJson('PRECONDITION_FAILED', 'Tus-Resumable 1.0.0 required'),
      )
    return next()
  })

  const discovery = (): Response =>
    reply(204, {
      'Tus-Version': tusVersion,
      'Tus-Extension': extensions,
      'Tus-Max-Size': String(maxSize),
      'Tus-Checksum-Algorithm': 'sha256',
    })
  app.options('/', discovery)
  app.options('/:id', discovery)

  /**
   * Appends the request body at `offset`. Resolves with the new offset, or with a response that
   * ends the request differently (checksum mismatch, too large, cut).
   */
  const writeBody = async (
    c: Context<E>,
    id: string,
    upload: PartialUpload,
    offset: number,
  ): Promise<number | Response> => {
    const checksumHeader = c.req.header('upload-checksum')
    let expected: Buffer | undefined
    if (checksumHeader !== undefined) {
      const [algorithm, value] = checksumHeader.split(' ')
      if (algorithm !== 'sha256')
        return reply(400, {}, errorJson('BAD_REQUEST', 'Only the sha256 checksum algorithm is supported'))
      expected = Buffer.from(value ?? '', 'base64')
      if (expected.length !== 32) return reply(400, {}, errorJson('BAD_REQUEST', 'Malformed Upload-Checksum'))
    }
    const declared = c.req.header('content-length')
    if (declared !== undefined && offset + Number(declared) > upload.length)
      return reply(413, { Connection: 'close' }, errorJson('TOO_LARGE', 'The body goes past Upload-Length'))
    const { incoming, body } = bindingsOf(c)
    if (!incoming) throw new Error('tus() needs serve() from @flumen/core')
    const hash = expected ? createHash('sha256') : undefined
    const writer: Writable = await storage.append(id, offset)
    const reporter = reporting(c, id, upload.metadata)
    const name = displayName(upload.metadata.filename ?? upload.metadata.name ?? 'file')
    let written = 0
    const outcome = await new Promise<'complete' | 'cut' | 'too-large' | 'failed'>((resolve) => {
      let finished = false
      const finish = (result: 'complete' | 'cut' | 'too-large' | 'failed'): void => {
        if (finished) return
        finished = true
        // A cut body answers 408 and closes; otherwise what is left is the server's to discard.
        if (result !== 'cut') body?.release()
        incoming.off('data', onData)
        incoming.off('end', onEnd)
        incoming.off('close', onClose)
        writer.end(() => resolve(result))
      }
      body?.guard(pace, () => finish('cut'))
      const onData = (chunk: Buffer): void => {
        if (offset + written + chunk.length > upload.length) {
          finish('too-large')
          return
        }
        written += chunk.length
        hash?.update(chunk)
        if (!writer.write(chunk)) {
          incoming.pause()
          writer.once('drain', () => incoming.resume())
        }
        const bytes = offset + written
        reporter?.progress({ received: bytes, total: upload.length, file: { field: 'tus', name, bytes } })
      }
      const onEnd = (): void => finish('complete')
      const onClose = (): void => finish(incoming.complete ? 'complete' : 'cut')
      writer.once('error', () => finish('failed'))
      incoming.on('data', onData)
      incoming.once('end', onEnd)
      incoming.once('close', onClose)
    })
    if (outcome === 'failed') {
      counts.failed++
      await storage.truncatePartial(id, offset).catch(() => {})
      return reply(500, {}, errorJson('INTERNAL', 'Storage failed'))
    }
    if (outcome === 'too-large') {
      await storage.truncatePartial(id, offset)
      return reply(413, { Connection: 'close' }, errorJson('TOO_LARGE', 'The body goes past Upload-Length'))
    }
    // A chunk with a checksum is all or nothing; without one, the bytes that arrived count.
    if (expected && (outcome === 'cut' || !hash!.digest().equals(expected))) {
      await storage.truncatePartial(id, offset)
      if (outcome === 'complete') return reply(460, {}, errorJson('CHECKSUM_MISMATCH', 'Checksum mismatch'))
    }
    if (outcome === 'cut')
      return reply(
        408,
        { Connection: 'close' },
        errorJson('TIMEOUT', 'The body stopped or arrived too slowly'),
      )
    return offset + written
  }

  /** Hashes and stores a complete upload; a Response when its type is not allowed. */
  const complete = async (
    c: Context<E>,
    id: string,
    upload: PartialUpload,
  ): Promise<Response | undefined> => {
    const hash = createHash('sha256')
    let head = Buffer.alloc(0)
    for await (const chunk of await storage.readPartial(id)) {
      hash.update(chunk as Buffer)
      if (head.length < sniffBytes) head = Buffer.concat([head, chunk as Buffer])
    }
    const sniffed = sniffType(head.subarray(0, sniffBytes))
    if (allowedTypes && !allowedTypes.has(sniffed)) {
      counts.failed++
      await storage.removePartial(id)
      quotas.release(id)
      return reply(415, {}, errorJson('UNSUPPORTED_MEDIA_TYPE', 'The file is not an allowed type'))
    }
    const file: StoredFile = {
      id,
      field: 'tus',
      name: displayName(upload.metadata.filename ?? upload.metadata.name ?? 'file'),
      size: upload.length,
      type: fileType(sniffed, upload.metadata.filetype),
      sha256: hash.digest('hex'),
      ...(upload.owner !== undefined && { owner: upload.owner }),
    }
    await storage.completePartial(id, file)
    quotas.release(id)
    counts.completed++
    counts.bytes += file.size
    await options.onComplete?.(file, c, upload.metadata)
    reporting(c, id, upload.metadata)?.done([file])
    return undefined
  }

  /** Runs a body write and, when it completes the upload, the completion. */
  const patch = async (
    c: Context<E>,
    id: string,
    upload: PartialUpload,
    offset: number,
  ): Promise<number | Response> => {
    busy.add(id)
    try {
      const result = await writeBody(c, id, upload, offset)
      if (typeof result === 'number' && result === upload.length) {
        const refused = await complete(c, id, upload)
        if (refused) return refused
      }
      return result
    } finally {
      busy.delete(id)
    }
  }

  app.post('/', async (c) => {
    if (c.req.header('upload-defer-length') !== undefined)
      return reply(400, {}, errorJson('BAD_REQUEST', 'Upload-Defer-Length is not supported'))
    const lengthHeader = c.req.header('upload-length') ?? ''
    if (!/^\d{1,16}$/.test(lengthHeader))
      return reply(400, {}, errorJson('BAD_REQUEST', 'Upload-Length required'))
    const length = Number(lengthHeader)
    if (length > maxSize)
      return reply(
        413,
        { Connection: 'close' },
        errorJson('TOO_LARGE', `Uploads are limited to ${maxSize} bytes`),
      )
    const metadata = parseMetadata(c.req.header('upload-metadata'))
    if (!metadata) return reply(400, {}, errorJson('BAD_REQUEST', 'Malformed Upload-Metadata'))
    const id = createId()
    const owner = ownerOf(c)
    const upload: PartialUpload = {
      id,
      length,
      metadata,
      expiresAt: Date.now() + expiresInMs,
      ...(owner !== undefined && { owner }),
    }
    if (owner !== undefined) {
      const refused = await quotas.reserve(owner, id, length, maxUploadsPerOwner, maxBytesPerOwner)
      if (refused) return reply(refused.status, {}, errorJson(refused.code, refused.message))
    }
    try {
      await storage.createPartial(upload)
    } catch (err) {
      quotas.release(id)
      throw err
    }
    const location = `${new URL(c.req.url).pathname.replace(/\/$/, '')}/${id}`
    const headers = { Location: location, ...expiresHeader(upload) }
    const hasBody = (c.req.header('content-type') ?? '').startsWith(offsetType)
    if (!hasBody && length > 0) return reply(201, headers)
    const result = await patch(c, id, upload, 0)
    if (typeof result !== 'number') return result
    return reply(201, { ...headers, 'Upload-Offset': String(result) })
  })

  // Hono routes HEAD through GET handlers (and drops the body); a real GET is not part of tus.
  app.get('/:id', async (c) => {
    if (c.req.method !== 'HEAD') return reply(405, { Allow: 'HEAD, PATCH, DELETE, OPTIONS' })
    const id = c.req.param('id')
    const found = await load(c, id)
    if (found instanceof Response) {
      // A completed upload still answers with its offset (its length), as the spec wants: a client
      // resuming it then knows it is done instead of starting over.
      const done = found.status === 404 ? await storage.info(id).catch(() => undefined) : undefined
      if (done && done.field === 'tus' && done.owner === ownerOf(c))
        return reply(200, { 'Upload-Offset': String(done.size), 'Upload-Length': String(done.size) })
      return new Response(null, { status: found.status, headers: common })
    }
    const { upload, offset } = found
    return reply(200, {
      'Upload-Offset': String(offset),
      'Upload-Length': String(upload.length),
      ...(Object.keys(upload.metadata).length > 0 && { 'Upload-Metadata': encodeMetadata(upload.metadata) }),
      ...expiresHeader(upload),
    })
  })

  app.patch('/:id', async (c) => {
    const id = c.req.param('id')
    if (!(c.req.header('content-type') ?? '').startsWith(offsetType))
      return reply(415, {}, errorJson('UNSUPPORTED_MEDIA_TYPE', `Content-Type must be ${offsetType}`))
    const offsetHeader = c.req.header('upload-offset') ?? ''
    if (!/^\d{1,16}$/.test(offsetHeader))
      return reply(400, {}, errorJson('BAD_REQUEST', 'Upload-Offset required'))
    const found = await load(c, id)
    if (found instanceof Response) return found
    if (busy.has(id)) return reply(409, {}, errorJson('CONFLICT', 'Another PATCH is in progress'))
    if (Number(offsetHeader) !== found.offset)
      return reply(
        409,
        { 'Upload-Offset': String(found.offset) },
        errorJson('CONFLICT', 'Upload-Offset does not match'),
      )
    const result = await patch(c, id, found.upload, found.offset)
    if (typeof result !== 'number') return result
    return reply(204, { 'Upload-Offset': String(result), ...expiresHeader(found.upload) })
  })

  app.delete('/:id', async (c) => {
    const id = c.req.param('id')
    const found = await load(c, id)
    if (found instanceof Response) return found
    if (busy.has(id)) return reply(409, {}, errorJson('CONFLICT', 'A PATCH is in progress'))
    await storage.removePartial(id)
    quotas.release(id)
    // Who watched it arrive learns it never will.
    reporting(c, id, found.upload.metadata)?.failed({ code: 'ABORTED', message: 'The upload was cancelled' })
    return reply(204)
  })

  return Object.assign(app, { sweep, stats })
}
