import { FlumenClientError } from './errors.js'

/** The part of the standard WebSocket API the client uses (browsers' WebSocket and `ws` both have it). */
export interface WebSocketLike {
  readonly readyState: number
  readonly protocol: string
  binaryType: string
  send(data: string | ArrayBufferLike | ArrayBufferView): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void
  addEventListener(type: 'open' | 'error', listener: (event: unknown) => void): void
  removeEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
}

export interface SocketFactoryOptions {
  /** Extra handshake headers (Node only; browsers cannot set them). */
  headers?: Record<string, string>
  /** permessage-deflate (Node only). */
  perMessageDeflate?: boolean
}

/** Creates a socket: `new WebSocket(url, protocols)` in browsers, `ws` under Node. */
export type SocketFactory = (url: string, protocols: string[], options: SocketFactoryOptions) => WebSocketLike

export interface ConnectOptions extends SocketFactoryOptions {
  /** Subprotocols to offer. */
  protocols?: string[]
  /**
   * Time to wait for the handshake.
   * @default 10000
   */
  connectTimeoutMs?: number
  /**
   * Messages kept while nobody reads; more close the socket with 1008 (a reader that stopped).
   * @default 10000
   */
  maxQueuedMessages?: number
  /** Cancels the connect. */
  signal?: AbortSignal
}

export type SocketMessage = string | ArrayBuffer

/** How a socket ended: the close frame's code and reason. */
export interface CloseInfo {
  code: number
  reason: string
  /** True for 1000 (normal) and 1001 (going away). */
  clean: boolean
}

/** A connected WebSocket with awaitable reads. */
export interface RawSocket extends AsyncIterable<SocketMessage> {
  /** The subprotocol the server chose ('' for none). */
  readonly protocol: string
  readonly closed: Promise<CloseInfo>
  readonly isOpen: boolean
  send(data: string | ArrayBufferLike | ArrayBufferView): void
  /** The next message; rejects with TIMEOUT after `timeoutMs`, or CLOSED / ABNORMAL_CLOSE. */
  recv(options?: { timeoutMs?: number }): Promise<SocketMessage>
  close(code?: number, reason?: string): Promise<CloseInfo>
}

const OPEN = 1

/** Why a close ended reads: normal closes are CLOSED, the rest ABNORMAL_CLOSE. */
const closeError = (info: CloseInfo): FlumenClientError =>
  new FlumenClientError(
    info.clean ? 'CLOSED' : 'ABNORMAL_CLOSE',
    `The socket closed (${info.code}${info.reason ? ` ${info.reason}` : ''})`,
    { closeCode: info.code },
  )

/** Maps what a failed handshake tells (little in browsers, more under Node) to an error code. */
const connectError = (detail: unknown): FlumenClientError => {
  const message = detail instanceof Error ? detail.message : String(detail ?? '')
  const status = /Unexpected server response: (\d+)/.exec(message)?.[1]
  if (status)
    return new FlumenClientError('HANDSHAKE_FAILED', `The server refused the upgrade (${status})`, {
      status: Number(status),
      cause: detail,
    })
  if (/ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|connect/i.test(message) || message === '')
    return new FlumenClientError('CONNECTION_REFUSED', 'Could not connect', { cause: detail })
  return new FlumenClientError('PROTOCOL_ERROR', message, { cause: detail })
}

/**
 * Opens a WebSocket and resolves once it is open. Works with any WebSocket server.
 * Errors: CONNECT_TIMEOUT, CONNECTION_REFUSED, HANDSHAKE_FAILED (with `status` under Node), ABORTED.
 */
export const connectWith = (
  factory: SocketFactory,
  url: string,
  options: ConnectOptions = {},
): Promise<RawSocket> => {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000
  const maxQueued = options.maxQueuedMessages ?? 10_000
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new FlumenClientError('ABORTED', 'Connect aborted'))
      return
    }
    let socket: WebSocketLike
    try {
      socket = factory(url, options.protocols ?? [], {
        ...(options.headers && { headers: options.headers }),
        ...(options.perMessageDeflate !== undefined && { perMessageDeflate: options.perMessageDeflate }),
      })
    } catch (err) {
      reject(new FlumenClientError('PROTOCOL_ERROR', `Bad URL or protocols: ${String(err)}`, { cause: err }))
      return
    }
    socket.binaryType = 'arraybuffer'
    const queue: SocketMessage[] = []
    const readers: { resolve(message: SocketMessage): void; reject(err: unknown): void }[] = []
    let closeInfo: CloseInfo | undefined
    let opened = false
    let failure: unknown
    let resolveClosed!: (info: CloseInfo) => void
    const closed = new Promise<CloseInfo>((done) => {
      resolveClosed = done
    })

    const timer = setTimeout(
      () => fail(new FlumenClientError('CONNECT_TIMEOUT', `No handshake within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
    )
    const onAbort = (): void => fail(new FlumenClientError('ABORTED', 'Connect aborted'))
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const fail = (err: FlumenClientError): void => {
      if (opened || failure) return
      failure = err
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      try {
        socket.close()
      } catch {
        // closing a socket that never opened may throw in some implementations
      }
      reject(err)
    }

    const onMessage = (event: { data: unknown }): void => {
      const data = event.data
      const message: SocketMessage =
        typeof data === 'string' ? data : data instanceof ArrayBuffer ? data : String(data)
      const reader = readers.shift()
      if (reader) reader.resolve(message)
      else if (queue.push(message) > maxQueued) socket.close(1008, 'Reader too slow')
    }
    const onError = (event: unknown): void => {
      // A `ws` ErrorEvent says why; a browser's error event says nothing.
      const { error, message } = (event ?? {}) as { error?: unknown; message?: string }
      if (!opened) fail(connectError(error ?? message))
    }
    const onClose = (event: { code: number; reason: string }): void => {
      closeInfo = {
        code: event.code,
        reason: event.reason,
        clean: event.code === 1000 || event.code === 1001,
      }
      socket.removeEventListener('message', onMessage)
      if (!opened) fail(failure ? (failure as FlumenClientError) : connectError(`closed ${event.code}`))
      for (const reader of readers.splice(0)) reader.reject(closeError(closeInfo))
      resolveClosed(closeInfo)
    }
    socket.addEventListener('message', onMessage)
    socket.addEventListener('error', onError)
    socket.addEventListener('close', onClose)
    socket.addEventListener('open', () => {
      if (failure) return
      opened = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      resolve(raw)
    })

    const recv = (recvOptions: { timeoutMs?: number } = {}): Promise<SocketMessage> => {
      const queued = queue.shift()
      if (queued !== undefined) return Promise.resolve(queued)
      if (closeInfo) return Promise.reject(closeError(closeInfo))
      return new Promise((resolveRead, rejectRead) => {
        const reader = {
          resolve: (message: SocketMessage) => {
            clearTimeout(readTimer)
            resolveRead(message)
          },
          reject: (err: unknown) => {
            clearTimeout(readTimer)
            rejectRead(err)
          },
        }
        const readTimer =
          recvOptions.timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                readers.splice(readers.indexOf(reader), 1)
                rejectRead(new FlumenClientError('TIMEOUT', `No message within ${recvOptions.timeoutMs} ms`))
              }, recvOptions.timeoutMs)
        readers.push(reader)
      })
    }

    const raw: RawSocket = {
      get protocol() {
        return socket.protocol
      },
      get isOpen() {
        return socket.readyState === OPEN
      },
      closed,
      send(data) {
        if (socket.readyState !== OPEN)
          throw closeInfo ? closeError(closeInfo) : new FlumenClientError('CLOSED', 'The socket is not open')
        socket.send(data)
      },
      recv,
      close(code = 1000, reason = '') {
        if (!closeInfo) socket.close(code, reason)
        return closed
      },
      async *[Symbol.asyncIterator]() {
        for (;;) {
          try {
            yield await recv()
          } catch (err) {
            // A clean close ends the iteration; anything else is the caller's to see.
            if (err instanceof FlumenClientError && err.code === 'CLOSED') return
            throw err
          }
        }
      },
    }
  })
}
