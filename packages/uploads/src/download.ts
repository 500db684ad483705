import { Readable } from 'node:stream'
import { FlumenError } from '@flumen/core'
import type { Context, Env, MiddlewareHandler } from 'hono'
import type { ByteRange, FileStore, StoredFile } from './storage.js'

/** Options of `download<E>()`: `E` is the Env of the route, as its callbacks see `c`. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface DownloadOptions<E extends Env = any> {
  storage: Pick<FileStore, 'info' | 'read'>
  /**
   * The id of the file a request asks for.
   * @default (c) => c.req.param('id')
   */
  id?: (c: Context<E>) => string | undefined
  /**
   * Whether this request may read this file; false answers 404, as for a file that does not exist
   * (a refusal must not tell that it does).
   * @default every file may be read
   */
  authorize?: (file: StoredFile, c: Context<E>) => boolean | Promise<boolean>
  /**
   * `attachment` makes browsers save the file; `inline` lets them show it (images), still under a
   * sandboxing Content-Security-Policy and `nosniff`, so an uploaded HTML or SVG never runs as the
   * site.
   * @default 'attachment'
   */
  disposition?: 'attachment' | 'inline'
  /** @default 'private, max-age=3600' */
  cacheControl?: string
}

/** `"<sha256>"`: a strong validator, the same for the same content on every node. */
const etagOf = (file: StoredFile): string => `"${file.sha256}"`

/** If-None-Match: `*` or a list of (possibly weak) entity tags; weak comparison. */
const matchesNoneMatch = (header: string, etag: string): boolean =>
  header.trim() === '*' || header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)

/**
 * The one range of a `Range: bytes=…` header, `undefined` to send the whole file (no header, a
 * form we do not serve such as several ranges: ignoring Range is allowed), or `'unsatisfiable'`.
 */
export const parseRange = (
  header: string | undefined,
  size: number,
): ByteRange | undefined | 'unsatisfiable' => {
  if (header === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!match || (match[1] === '' && match[2] === '')) return undefined
  if (match[1] === '') {
    const suffix = Number(match[2])
    if (suffix === 0) return 'unsatisfiable'
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(match[1])
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1)
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable'
  if (end < start) return undefined
  return { start, end }
}

const contentDisposition = (kind: 'attachment' | 'inline', name: string): string => {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  return `${kind}; filename="${fallback}"; filename*=UTF-8''${encodeURIComponent(name)}`
}

/**
 * A GET/HEAD route serving stored files: `HEAD` answers without opening the file, `Range` gets
 * 206 (one range; 416 when it is outside the file), `If-None-Match` with the file's ETag gets 304,
 * and every answer carries `Content-Disposition`, `nosniff` and a sandboxing CSP. The file stream
 * is closed on every path: sent, cancelled, or cut by the client. Put authentication before it.
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const download = <E extends Env = any>(options: DownloadOptions<E>): MiddlewareHandler<E> => {
  const storage = options.storage
  if (typeof storage?.info !== 'function' || typeof storage.read !== 'function')
    throw new Error('download: storage must have info() and read()')
  const idOf: (c: Context<E>) => string | undefined = options.id ?? ((c) => c.req.param('id'))
  const authorize = options.authorize
  if (authorize !== undefined && typeof authorize !== 'function')
    throw new Error('download: authorize must be a function')
  const disposition = options.disposition ?? 'attachment'
  if (disposition !== 'attachment' && disposition !== 'inline')
    throw new Error("download: disposition must be 'attachment' or 'inline'")
  const cacheControl = options.cacheControl ?? 'private, max-age=3600'

  return async function download(c) {
    const id = idOf(c)
    const file = id === undefined ? undefined : await storage.info(id)
    if (!file || (authorize && !(await authorize(file, c))))
      throw new FlumenError('NOT_FOUND', 'No such file')
    const etag = etagOf(file)
    const headers: Record<string, string> = {
      etag,
      'cache-control': cacheControl,
      'accept-ranges': 'bytes',
      'content-disposition': contentDisposition(disposition, file.name),
      'x-content-type-options': 'nosniff',
      // Whatever the file is, it never runs scripts or loads anything as this site.
      'content-security-policy': "default-src 'none'; sandbox",
    }
    const noneMatch = c.req.header('if-none-match')
    if (noneMatch !== undefined && matchesNoneMatch(noneMatch, etag)) return c.body(null, 304, headers)
    // If-Range with another validator: the file changed, so the whole of it is sent.
    const ifRange = c.req.header('if-range')
    const range =
      ifRange === undefined || ifRange === etag ? parseRange(c.req.header('range'), file.size) : undefined
    if (range === 'unsatisfiable')
      throw new FlumenError('RANGE_NOT_SATISFIABLE', undefined, {
        headers: { 'content-range': `bytes */${file.size}` },
      })
    headers['content-type'] = file.type || 'application/octet-stream'
    headers['content-length'] = String(range ? range.end - range.start + 1 : file.size)
    if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${file.size}`
    const status = range ? 206 : 200
    // HEAD: everything a GET would say, without opening the file.
    if (c.req.method === 'HEAD') return c.body(null, status, headers)
    const content = await storage.read(file.id, range)
    if (!content) throw new FlumenError('NOT_FOUND', 'No such file')
    // Readable.toWeb destroys the file stream when the response is cancelled (a client that left).
    return c.body(Readable.toWeb(content) as ReadableStream<Uint8Array>, status, headers)
  }
}
