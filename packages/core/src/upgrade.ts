// WebSocket upgrades through the app: an `Upgrade:` request runs the Hono middleware chain like any
// GET; a transport route accepts it (the socket is handed over after the app answered 2xx), and any
// other answer is written as a plain HTTP response on the raw socket.
import type { IncomingMessage } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FlumenBindings, UpgradeRequest } from './app.js'
import { errorResponse, FlumenError } from './errors.js'
import type { FlumenServer } from './plugins.js'

// Headers of a Response that must not be copied into a raw upgrade reply.
const hopByHopHeaders = new Set([
  'connection',
  'content-length',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
])
// A rejection written on a raw socket is small (an error body); more is cut, not buffered.
const maxRawReplyBytes = 64 * 1024
const noop = (): void => {}

const createUpgradeRequestObject = (req: IncomingMessage): Request => {
  const headers = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`)
  return new Request(url, { method: req.method ?? 'GET', headers })
}

/** The body of a raw reply: read up to the cap, else nothing (the rest is never read, the stream cancelled). */
const readCapped = async (stream: ReadableStream<Uint8Array>): Promise<Buffer> => {
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return Buffer.concat(chunks)
      size += value.byteLength
      if (size > maxRawReplyBytes) return Buffer.alloc(0)
      chunks.push(value)
    }
  } finally {
    reader.cancel().catch(noop)
  }
}

/** Writes a complete HTTP/1.1 response on a socket that Node handed over for an upgrade. */
const writeRawResponse = async (socket: Duplex, response: Response): Promise<void> => {
  const body = response.body ? await readCapped(response.body) : Buffer.alloc(0)
  if (socket.destroyed) return
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`]
  response.headers.forEach((value, key) => {
    if (!hopByHopHeaders.has(key)) lines.push(`${key}: ${value.replace(/[\r\n]/g, '')}`)
  })
  lines.push('Connection: close', `Content-Length: ${body.length}`, '', '')
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body]))
}

export interface UpgradeContext {
  readonly app: { fetch(request: Request, env: FlumenBindings): Response | Promise<Response> }
  /** Whether new connections are taken (false while draining: they get 503). */
  accepting(): boolean
  server(): FlumenServer
  logError(err: unknown, where: string): void
}

/** The server's `upgrade` handler: the app decides, a route accepts. */
export const upgradeHandler = (
  context: UpgradeContext,
): ((req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>) => {
  return async (req, socket, head) => {
    if (!context.accepting()) {
      return writeRawResponse(
        socket,
        errorResponse(new FlumenError('UNAVAILABLE', 'Server is shutting down')),
      )
    }
    let complete: ((headers: Headers) => void) | undefined
    let cancel: (() => void) | undefined
    const upgrade: UpgradeRequest = {
      socket,
      head,
      accept(onComplete, onCancel) {
        complete = onComplete
        cancel = onCancel
      },
    }
    let request: Request
    try {
      request = createUpgradeRequestObject(req)
    } catch {
      return writeRawResponse(socket, errorResponse(new FlumenError('BAD_REQUEST')))
    }
    const env: FlumenBindings = { incoming: req, flumen: context.server(), upgrade }
    let response: Response
    try {
      response = await context.app.fetch(request, env)
    } catch (err) {
      context.logError(err, 'upgrade')
      response = errorResponse(new FlumenError('INTERNAL'))
    }
    // Fetch Responses cannot carry 101: a route that accepted answers 2xx, and a middleware
    // that turns the answer into an error after the route ran still prevents the upgrade.
    if (complete && response.status < 300 && !socket.destroyed) {
      socket.off('error', noop)
      complete(response.headers)
      return
    }
    cancel?.()
    if (socket.destroyed) return
    await writeRawResponse(socket, response)
  }
}
