import type { IncomingMessage } from 'node:http'
import WebSocket from 'ws'

/** The HTTP answer a server gave instead of 101 Switching Protocols. */
export interface RefusedUpgrade {
  status: number
  headers: IncomingMessage['headers']
  body: string
}

/**
 * Opens a WebSocket (the `ws` client) that the server is expected to refuse, and resolves with the
 * refusal: status, headers and body. Rejects if the upgrade is accepted (the socket is closed) or
 * nothing comes within `timeoutMs`. Nothing is left open either way.
 */
export const refusedUpgrade = (
  url: string,
  options: { headers?: Record<string, string>; protocols?: string[]; timeoutMs?: number } = {},
): Promise<RefusedUpgrade> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {} })
    const timer = setTimeout(() => {
      socket.terminate()
      reject(new Error(`no answer to the upgrade within ${options.timeoutMs ?? 5_000} ms`))
    }, options.timeoutMs ?? 5_000)
    socket.on('error', () => {}) // a refused socket reports an error once it is torn down
    socket.once('open', () => {
      clearTimeout(timer)
      socket.terminate()
      reject(new Error('the upgrade was accepted'))
    })
    socket.once('unexpected-response', (req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.once('end', () => {
        clearTimeout(timer)
        req.destroy()
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
    })
  })
