/** Stable codes of client-side failures; server errors keep the server's code (`FORBIDDEN`…). */
export type ClientErrorCode =
  | 'CONNECT_TIMEOUT'
  | 'CONNECTION_REFUSED'
  | 'HANDSHAKE_FAILED'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'ABNORMAL_CLOSE'
  | 'PROTOCOL_ERROR'
  | 'OFFLINE_QUEUE_FULL'
  | 'DISCONNECTED'
  | 'ABORTED'
  | 'HTTP_ERROR'

export interface ClientErrorOptions {
  /** The WebSocket close code, when a close caused it. */
  closeCode?: number
  /** The HTTP status, when a response caused it. */
  status?: number
  cause?: unknown
}

/** Every error the client throws or rejects with: branch on `code`. */
export class FlumenClientError extends Error {
  override readonly name = 'FlumenClientError'
  readonly code: ClientErrorCode | (string & {})
  readonly closeCode: number | undefined
  readonly status: number | undefined

  constructor(code: ClientErrorCode | (string & {}), message: string, options: ClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.closeCode = options.closeCode
    this.status = options.status
  }
}
