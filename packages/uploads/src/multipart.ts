import type { IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { RequestBody } from '@flumen/core'
import { bindingsOf, createId, FlumenError, nonNegativeNumber, positiveInteger } from '@flumen/core'
import busboy from 'busboy'
import type { Context, Env, MiddlewareHandler } from 'hono'
import type { IncomingFile } from './file-writer.js'
import { writeFile } from './file-writer.js'
import { displayName } from './names.js'
import type { FileSink, StorageAdapter, StoredFile } from './storage.js'
import { diskStorage } from './storage.js'

export interface UploadLimits {
  /**
   * Bytes per file: exactly this many is accepted, one more is 413.
   * @default 104857600 (100 MiB)
   */
  fileSize: number
  /**
   * Bytes of the whole request body.
   * @default 1073741824 (1 GiB)
   */
  totalSize: number
  /** @default 10 */
  files: number
  /** @default 100 */
  fields: number
  /**
   * Parts (files and fields together).
   * @default 1000
   */
  parts: number
  /**
   * Bytes per field value: exactly this many is accepted, one more is 413.
   * @default 65536
   */
  fieldSize: number
  /**
   * Bytes per field name.
   * @default 200
   */
  fieldNameSize: number
  /**
   * Characters of a file name.
   * @default 255
   */
  filenameLength: number
}

/** Where progress events go: a hub (`createHub()`) fits. */
export interface ProgressPublisher {
  publish(topic: string, data: unknown): Promise<unknown>
}

/** `E` is the Env of the route (`AuthEnv` from @flumen/auth types `c.var.user`). */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface ProgressOptions<E extends Env = any> {
  publisher: ProgressPublisher
  /** The topic of this request's events (e.g. `user:<id>`); undefined sends none. */
  topic: (c: Context<E>) => string | undefined
  /**
   * At most one progress event per upload this often (plus the final one).
   * @default 250
   */
  intervalMs?: number
}

/** The events published to the progress topic. */
export type UploadEvent =
  | {
      type: 'upload-progress'
      uploadId: string
      /** Request bytes received so far, and the request's Content-Length when known. */
      received: number
      total: number | undefined
      file: { field: string; name: string; bytes: number } | undefined
    }
  | { type: 'upload-done'; uploadId: string; files: StoredFile[] }
  | { type: 'upload-failed'; uploadId: string; error: { code: string; message: string } }

export interface UploadResult {
  /** Correlates progress events: the client's `Upload-Id` header when valid, else generated. */
  uploadId: string
  files: StoredFile[]
  /** Text fields; a name sent several times has an array of values. No prototype. */
  fields: Record<string, string | string[]>
}

/** Options of `uploads<E>()`: `E` is the Env of the route, as its callbacks see `c`. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface UploadsOptions<E extends Env = any> {
  /** @default diskStorage({ dir: <os tmpdir>/flumen-uploads }) */
  storage?: StorageAdapter
  limits?: Partial<UploadLimits>
  /**
   * Accepted file types, recognised by their magic bytes (not the declared Content-Type), e.g.
   * `['image/png', 'image/jpeg', 'application/pdf']`; others get 415. See `sniffType`.
   * @default undefined (any type)
   */
  allowedTypes?: readonly string[]
  /**
   * A request body that sends nothing for this long is cut with 408.
   * @default 30000
   */
  idleTimeoutMs?: number
  /**
   * Slowloris guard: over each `rateWindowMs`, a body must average at least this many bytes per
   * second or it is cut with 408. Legitimate long uploads are fine at any higher rate. 0 turns
   * it off.
   * @default 1024
   */
  minBytesPerSecond?: number
  /** @default 10000 */
  rateWindowMs?: number
  progress?: ProgressOptions<E>
  /**
   * Runs once the files are stored; its Response (if any) is the answer, else 201 with the
   * result as JSON. If it throws, the files of the request are removed.
   */
  onComplete?: (result: UploadResult, c: Context<E>) => Response | undefined | Promise<Response | undefined>
}

const defaults: UploadLimits = {
  fileSize: 100 * 1024 * 1024,
  totalSize: 1024 * 1024 * 1024,
  files: 10,
  fields: 100,
  parts: 1000,
  fieldSize: 64 * 1024,
  fieldNameSize: 200,
  filenameLength: 255,
}

const uploadIdPattern = /^[A-Za-z0-9_-]{1,64}$/

export interface UploadStats {
  /** Uploads being received now. */
  readonly active: number
  completed: number
  failed: number
  /** File bytes stored by completed uploads. */
  bytes: number
}

// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface UploadsRoute<E extends Env = any> extends MiddlewareHandler<E> {
  readonly stats: Readonly<UploadStats>
  readonly storage: StorageAdapter
}

/**
 * A POST route receiving `multipart/form-data` straight from the Node request stream (busboy):
 * each file streams to storage with backpressure and SHA-256; limits, type checks, slow-body
 * guards and progress events included. Put authentication before it.
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const uploads = <E extends Env = any>(options: UploadsOptions<E> = {}): UploadsRoute<E> => {
  const limits: UploadLimits = { ...defaults }
  for (const [key, value] of Object.entries(options.limits ?? {}) as [keyof UploadLimits, number][]) {
    if (!(key in defaults)) throw new Error(`uploads: unknown limit ${key}`)
    limits[key] = positiveInteger('uploads', `limits.${key}`, value)
  }
  const storage = options.storage ?? diskStorage({ dir: join(tmpdir(), 'flumen-uploads') })
  const allowedTypes = options.allowedTypes ? new Set(options.allowedTypes) : undefined
  const idleTimeoutMs = positiveInteger('uploads', 'idleTimeoutMs', options.idleTimeoutMs ?? 30_000)
  const minBytesPerSecond = nonNegativeNumber(
    'uploads',
    'minBytesPerSecond',
    options.minBytesPerSecond ?? 1024,
  )
  const rateWindowMs = positiveInteger('uploads', 'rateWindowMs', options.rateWindowMs ?? 10_000)
  const progress = options.progress
  if (progress && (typeof progress.publisher?.publish !== 'function' || typeof progress.topic !== 'function'))
    throw new Error('uploads: progress needs a publisher with publish() and a topic function')
  const progressIntervalMs = nonNegativeNumber('uploads', 'progress.intervalMs', progress?.intervalMs ?? 250)
  const stats: UploadStats & { active: number } = { active: 0, completed: 0, failed: 0, bytes: 0 }

  const handler: MiddlewareHandler<E> = async (c) => {
    const { incoming, body } = bindingsOf(c)
    if (!incoming) throw new Error('uploads() needs serve() from @flumen/core')
    const contentType = c.req.header('content-type') ?? ''
    if (!/^multipart\/form-data\b/i.test(contentType))
      throw new FlumenError('UNSUPPORTED_MEDIA_TYPE', 'Expected multipart/form-data')
    const declaredLength = Number(c.req.header('content-length'))
    if (declaredLength > limits.totalSize)
      throw new FlumenError('TOO_LARGE', `The request is larger than ${limits.totalSize} bytes`)
    const headerId = c.req.header('upload-id')
    const uploadId = headerId !== undefined && uploadIdPattern.test(headerId) ? headerId : createId()
    const topic = progress?.topic(c)
    const publish = (event: UploadEvent): void => {
      if (topic !== undefined) progress!.publisher.publish(topic, event).catch(() => {})
    }
    stats.active++
    try {
      const result = await receive(
        incoming,
        body,
        uploadId,
        Number.isFinite(declaredLength) ? declaredLength : undefined,
        topic === undefined ? undefined : publish,
      )
      try {
        const response = await options.onComplete?.(result, c)
        stats.completed++
        for (const file of result.files) stats.bytes += file.size
        publish({ type: 'upload-done', uploadId, files: result.files })
        return response ?? c.json(result, 201)
      } catch (err) {
        await Promise.all(result.files.map((file) => storage.remove(file.id).catch(() => {})))
        throw err
      }
    } catch (err) {
      stats.failed++
      const error = err instanceof FlumenError ? err : new FlumenError('INTERNAL')
      publish({ type: 'upload-failed', uploadId, error: { code: error.code, message: error.message } })
      throw err
    } finally {
      stats.active--
    }
  }

  /** Parses the body; resolves with every file stored, or rejects with everything removed. */
  const receive = (
    incoming: IncomingMessage,
    body: RequestBody | undefined,
    uploadId: string,
    total: number | undefined,
    publish: ((event: UploadEvent) => void) | undefined,
  ): Promise<UploadResult> =>
    new Promise((resolve, reject) => {
      let parser: busboy.Busboy
      try {
        parser = busboy({
          headers: incoming.headers,
          // +1: busboy flags a file or field that reaches its limit exactly; we flag the byte after it.
          limits: {
            fileSize: limits.fileSize + 1,
            files: limits.files,
            fields: limits.fields,
            parts: limits.parts,
            fieldSize: limits.fieldSize + 1,
            fieldNameSize: limits.fieldNameSize,
            headerPairs: 20,
          },
          defParamCharset: 'utf8',
        })
      } catch {
        reject(new FlumenError('BAD_REQUEST', 'Malformed multipart Content-Type (boundary missing)'))
        return
      }
      const files: StoredFile[] = []
      const sinks = new Set<FileSink>()
      const streams = new Set<Readable>()
      const writes: Promise<void>[] = []
      const fields: Record<string, string | string[]> = Object.create(null)
      let received = 0
      let settled = false
      let lastProgressAt = 0
      let current: { field: string; name: string; bytes: number } | undefined
      /** Files are answered in request order, whichever finishes storing first. */
      let slots = 0

      const progressNow = (force: boolean): void => {
        if (!publish) return
        const now = Date.now()
        if (!force && now - lastProgressAt < progressIntervalMs) return
        lastProgressAt = now
        publish({ type: 'upload-progress', uploadId, received, total, file: current && { ...current } })
      }

      const cleanup = (): void => {
        body?.release()
        incoming.off('data', onData)
        incoming.off('close', onClose)
        incoming.unpipe(parser)
      }

      const fail = (err: FlumenError): void => {
        if (settled) return
        settled = true
        // Nothing more reaches the parser; what is left of the body is discarded by the server
        // after the answer (within its discardBody bounds).
        cleanup()
        // fail() may run inside busboy's own emit (a file chunk, a limit event): tearing the parser
        // down from there would crash it. After this turn it is safe.
        setImmediate(() => {
          for (const stream of streams) stream.destroy()
          parser.destroy()
          // Once every file task has stopped, nothing of the request is kept; then the answer.
          void Promise.all(writes).then(async () => {
            await Promise.all([
              ...[...sinks].map((sink) => sink.abort().catch(() => {})),
              ...files.filter(Boolean).map((file) => storage.remove(file.id).catch(() => {})),
            ])
            reject(err.code === 'TIMEOUT' ? closing(err) : err)
          })
        })
      }

      const onData = (chunk: Buffer): void => {
        received += chunk.length
        if (received > limits.totalSize)
          fail(new FlumenError('TOO_LARGE', `The request is larger than ${limits.totalSize} bytes`))
      }
      const onClose = (): void => {
        if (!incoming.complete) fail(new FlumenError('BAD_REQUEST', 'The client aborted the upload'))
      }
      incoming.on('data', onData)
      incoming.on('close', onClose)
      body?.guard({ idleTimeoutMs, minBytesPerSecond, rateWindowMs }, fail)

      parser.on('field', (name, value, info) => {
        if (settled) return
        if (!name) return fail(new FlumenError('BAD_REQUEST', 'A field has no name'))
        if (info.nameTruncated) return fail(new FlumenError('TOO_LARGE', 'A field name is too long'))
        if (info.valueTruncated)
          return fail(
            new FlumenError(
              'TOO_LARGE',
              `Field ${displayName(name, 64)} is larger than ${limits.fieldSize} bytes`,
            ),
          )
        const existing = fields[name]
        fields[name] =
          existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value]
      })

      parser.on('file', (field, stream, info) => {
        // Its errors (a body that ends mid-file) are the parser's too, reported there once.
        stream.on('error', () => {})
        streams.add(stream)
        stream.once('close', () => streams.delete(stream))
        if (settled) {
          stream.resume()
          return
        }
        if (!field) return fail(new FlumenError('BAD_REQUEST', 'A file field has no name'))
        // An empty file input: browsers send filename="" and no content.
        if (info.filename === undefined || info.filename.length === 0) {
          stream.resume()
          return
        }
        if ([...info.filename].length > limits.filenameLength)
          return fail(
            new FlumenError('BAD_REQUEST', `A file name is longer than ${limits.filenameLength} characters`),
          )
        stream.pause()
        const file: IncomingFile = {
          id: createId(),
          field,
          name: displayName(info.filename, limits.filenameLength),
          declaredType: info.mimeType,
        }
        writes.push(storeFile(stream, file, slots++))
      })

      /** One file into storage; a failure fails the whole request. */
      const storeFile = async (stream: Readable, file: IncomingFile, index: number): Promise<void> => {
        let sink: FileSink
        try {
          sink = await storage.create({
            id: file.id,
            field: file.field,
            name: file.name,
            type: file.declaredType,
          })
        } catch (err) {
          stream.resume()
          return fail(new FlumenError('INTERNAL', 'Storage failed', { cause: err }))
        }
        sinks.add(sink)
        if (settled) return // fail() aborts every sink
        const progressFile = { field: file.field, name: file.name, bytes: 0 }
        current = progressFile
        try {
          files[index] = await writeFile(stream, sink, file, {
            maxBytes: limits.fileSize,
            allowedTypes,
            onProgress: (bytes) => {
              progressFile.bytes = bytes
              progressNow(false)
            },
          })
          sinks.delete(sink)
        } catch (err) {
          fail(err as FlumenError)
        }
      }

      parser.on('partsLimit', () => fail(new FlumenError('TOO_LARGE', `More than ${limits.parts} parts`)))
      parser.on('filesLimit', () => fail(new FlumenError('TOO_LARGE', `More than ${limits.files} files`)))
      parser.on('fieldsLimit', () => fail(new FlumenError('TOO_LARGE', `More than ${limits.fields} fields`)))
      parser.on('error', (err: Error) =>
        fail(new FlumenError('BAD_REQUEST', `Malformed multipart body: ${err.message}`)),
      )
      parser.on('close', () => {
        if (settled) return
        void Promise.all(writes).then(() => {
          if (settled) return
          settled = true
          cleanup()
          progressNow(true)
          resolve({ uploadId, files: files.filter(Boolean), fields })
        })
      })
      incoming.pipe(parser)
    })

  return Object.assign(handler, {
    stats: stats as Readonly<UploadStats>,
    storage,
  })
}

/** A body cut for its pace: the connection closes after the answer (nothing more is read). */
const closing = (err: FlumenError): FlumenError =>
  new FlumenError(err.code, err.message, {
    headers: { ...err.headers, connection: 'close' },
    cause: err.cause,
  })
