// The multipart/form-data route: busboy reads the Node request stream, each file goes through the
// file writer (sniff, hash, limits, backpressure) into storage; any failure removes everything.
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import type { RequestBody } from '@flumen/core'
import { bindingsOf, createId, FlumenError } from '@flumen/core'
import busboy from 'busboy'
import type { Env, MiddlewareHandler } from 'hono'
import type { IncomingFile } from './file-writer.js'
import { writeFile } from './file-writer.js'
import { displayName } from './names.js'
import type { ProgressReporter } from './progress.js'
import { progressReporting } from './progress.js'
import type { FileSink, FileStore, StoredFile } from './storage.js'
import type { UploadResult, UploadsOptions } from './uploads-options.js'
import { resolveUploadsOptions } from './uploads-options.js'

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
  readonly storage: FileStore
}

/**
 * A POST route receiving `multipart/form-data` straight from the Node request stream (busboy):
 * each file streams to storage with backpressure and SHA-256; limits, type checks, slow-body
 * guards and progress events included. Put authentication before it.
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const uploads = <E extends Env = any>(options: UploadsOptions<E> = {}): UploadsRoute<E> => {
  const { limits, storage, allowedTypes, pace } = resolveUploadsOptions(options)
  const reporting = progressReporting('uploads', options.progress)
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
    const reporter = reporting(c, uploadId)
    stats.active++
    try {
      const result = await receive(
        incoming,
        body,
        uploadId,
        Number.isFinite(declaredLength) ? declaredLength : undefined,
        reporter,
      )
      try {
        const response = await options.onComplete?.(result, c)
        stats.completed++
        for (const file of result.files) stats.bytes += file.size
        reporter?.done(result.files)
        return response ?? c.json(result, 201)
      } catch (err) {
        await Promise.all(result.files.map((file) => storage.remove(file.id).catch(() => {})))
        throw err
      }
    } catch (err) {
      stats.failed++
      const error = err instanceof FlumenError ? err : new FlumenError('INTERNAL')
      reporter?.failed({ code: error.code, message: error.message })
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
    reporter: ProgressReporter | undefined,
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
      let current: { field: string; name: string; bytes: number } | undefined
      /** Files are answered in request order, whichever finishes storing first. */
      let slots = 0

      const progressNow = (force: boolean): void =>
        reporter?.progress({ received, total, file: current && { ...current } }, force)

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
      body?.guard(pace, fail)

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
