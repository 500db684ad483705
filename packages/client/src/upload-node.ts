import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Readable } from 'node:stream'
import { FlumenClientError } from './errors.js'
import type { UploadOptions, UploadResponse } from './upload.js'
import { parseBody } from './upload.js'

/** A file for Node: bytes or a stream, with its name, and its size when streaming (else chunked). */
export interface NodeUploadFile {
  name: string
  data: Uint8Array | Readable
  type?: string
  size?: number
}

const quote = (value: string): string => value.replace(/[\r\n"]/g, (c) => encodeURIComponent(c))

/** Streams a multipart upload with backpressure, reporting progress as bytes are written. */
export const uploadFile = async (
  url: string,
  file: NodeUploadFile,
  options: UploadOptions = {},
): Promise<UploadResponse> => {
  if (options.signal?.aborted) throw new FlumenClientError('ABORTED', 'Upload aborted')
  const boundary = `flumen${randomBytes(12).toString('hex')}`
  const fields = Object.entries(options.fields ?? {})
    .map(
      ([name, value]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`,
    )
    .join('')
  const head = Buffer.from(
    `${fields}--${boundary}\r\nContent-Disposition: form-data; name="${quote(options.field ?? 'file')}"; ` +
      `filename="${quote(file.name)}"; filename*=UTF-8''${encodeURIComponent(file.name)}\r\n` +
      `Content-Type: ${file.type ?? 'application/octet-stream'}\r\n\r\n`,
  )
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const size = file.data instanceof Uint8Array ? file.data.byteLength : file.size
  const total = size === undefined ? undefined : head.length + size + tail.length
  const target = new URL(url)
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest
  const req = request(target, {
    method: 'POST',
    headers: {
      ...options.headers,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      ...(total !== undefined && { 'content-length': total }),
    },
  })
  const onAbort = (): void => {
    req.destroy(new FlumenClientError('ABORTED', 'Upload aborted'))
  }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  const response = new Promise<UploadResponse>((resolve, reject) => {
    req.once('error', (err) =>
      reject(
        err instanceof FlumenClientError
          ? err
          : new FlumenClientError('CONNECTION_REFUSED', err.message, { cause: err }),
      ),
    )
    req.once('response', async (res) => {
      const chunks: Buffer[] = []
      try {
        for await (const chunk of res) chunks.push(chunk as Buffer)
      } catch (err) {
        reject(new FlumenClientError('ABNORMAL_CLOSE', 'The answer was cut', { cause: err }))
        return
      }
      resolve({ status: res.statusCode ?? 0, body: parseBody(Buffer.concat(chunks).toString()) })
    })
  })
  response.catch(() => {}) // awaited below; a server that answers early must not be unhandled
  let loaded = 0
  const write = async (chunk: Uint8Array): Promise<void> => {
    loaded += chunk.byteLength
    if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response])
    options.onProgress?.({ loaded, total })
  }
  try {
    await write(head)
    if (file.data instanceof Uint8Array) {
      for (let at = 0; at < file.data.byteLength; at += 65_536)
        await write(file.data.subarray(at, at + 65_536))
    } else {
      for await (const chunk of file.data) {
        if (req.destroyed) break
        await write(chunk as Uint8Array)
      }
    }
    if (!req.destroyed) await write(tail)
    if (!req.destroyed) req.end()
    return await response
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
  }
}
