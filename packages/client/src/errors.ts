import type { SchemaIssue } from '@flumen/contract'
import type { ServerErrorCode } from './protocol.js'

/** Stable codes of client-side failures; server errors keep the server's code (`FORBIDDEN`…). */
export type ClientErrorCode =
  /** No handshake answer within `connectTimeoutMs`. */
  | 'CONNECT_TIMEOUT'
  /** The server could not be reached (refused, reset, DNS). */
  | 'CONNECTION_REFUSED'
  /** The server answered the upgrade with an HTTP status (`status` says which). */
  | 'HANDSHAKE_FAILED'
  /** A request got no answer within its timeout. */
  | 'TIMEOUT'
  /** The client was closed. */
  | 'CLOSED'
  /** The socket closed without a close frame. */
  | 'ABNORMAL_CLOSE'
  /** The server sent something that is not protocol v1. */
  | 'PROTOCOL_ERROR'
  /** More publishes waiting for a connection than `maxOfflineQueue`. */
  | 'OFFLINE_QUEUE_FULL'
  /** The connection dropped before a call's or subscribe's answer (publishes are resent instead). */
  | 'DISCONNECTED'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** An SSE stream or upload answered with an error status (`status` says which). */
  | 'HTTP_ERROR'
  /** A handler or listener of the app threw (reported through the `error` event). */
  | 'HANDLER_ERROR'
  /** The token function threw or rejected. */
  | 'TOKEN_ERROR'
  /** A token refresh on a live socket failed. */
  | 'AUTH_REFRESH_FAILED'
  /**
   * A message, presence member or call result broke the contract (`issues` say how, `topic`
   * where): it was not handed to the app.
   */
  | 'INVALID_MESSAGE'

export interface ClientErrorOptions {
  /** The WebSocket close code, when a close caused it. */
  closeCode?: number
  /** The HTTP status, when a response caused it. */
  status?: number
  cause?: unknown
  /** What a schema found wrong: the server's (BAD_REQUEST) or the contract's on this side. */
  issues?: readonly SchemaIssue[]
  /** The topic of a message that broke the contract. */
  topic?: string
}

/** Every error the client throws or rejects with: branch on `code`. */
export class FlumenClientError extends Error {
  override readonly name = 'FlumenClientError'
  readonly code: ClientErrorCode | ServerErrorCode
  readonly closeCode: number | undefined
  readonly status: number | undefined
  readonly issues: readonly SchemaIssue[] | undefined
  readonly topic: string | undefined

  constructor(code: ClientErrorCode | ServerErrorCode, message: string, options: ClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.closeCode = options.closeCode
    this.status = options.status
    this.issues = options.issues
    this.topic = options.topic
  }
}
