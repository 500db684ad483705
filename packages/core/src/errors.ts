import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

/**
 * Stable error codes shared by every Flumen package: the same code names an HTTP status,
 * a protocol `error` reply and a WebSocket close code.
 */
export type FlumenErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'TIMEOUT'
  | 'CONFLICT'
  | 'TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RANGE_NOT_SATISFIABLE'
  | 'UPGRADE_REQUIRED'
  | 'RATE_LIMITED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'SLOW_CONSUMER'

interface CodeInfo {
  readonly status: ContentfulStatusCode
  readonly closeCode: number
  readonly message: string
}

/** HTTP status, WebSocket close code and default message of every error code. */
export const errorCodes: Readonly<Record<FlumenErrorCode, CodeInfo>> = Object.freeze({
  BAD_REQUEST: { status: 400, closeCode: 1008, message: 'Bad request' },
  UNAUTHORIZED: { status: 401, closeCode: 4001, message: 'Unauthorized' },
  FORBIDDEN: { status: 403, closeCode: 4003, message: 'Forbidden' },
  NOT_FOUND: { status: 404, closeCode: 1008, message: 'Not found' },
  TIMEOUT: { status: 408, closeCode: 1008, message: 'Request timeout' },
  CONFLICT: { status: 409, closeCode: 1008, message: 'Conflict' },
  TOO_LARGE: { status: 413, closeCode: 1009, message: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, closeCode: 1003, message: 'Unsupported media type' },
  RANGE_NOT_SATISFIABLE: { status: 416, closeCode: 1008, message: 'Range not satisfiable' },
  UPGRADE_REQUIRED: { status: 426, closeCode: 1008, message: 'Upgrade required' },
  RATE_LIMITED: { status: 429, closeCode: 1008, message: 'Too many requests' },
  INTERNAL: { status: 500, closeCode: 1011, message: 'Internal server error' },
  UNAVAILABLE: { status: 503, closeCode: 1001, message: 'Service unavailable' },
  SLOW_CONSUMER: { status: 503, closeCode: 4008, message: 'Slow consumer' },
})

/** One problem with the data a client sent, as a schema reported it (sent to the client). */
export interface ErrorIssue {
  readonly message: string
  /** Where in the data: `['from', 'name']`. */
  readonly path?: readonly (string | number)[]
}

export interface FlumenErrorOptions {
  /** The underlying error, kept for logs; never sent to clients. */
  cause?: unknown
  /** Extra response headers (e.g. `WWW-Authenticate`, `Retry-After`). */
  headers?: Record<string, string>
  /** What was wrong with the client's data (schema validation): sent with the code and message. */
  issues?: readonly ErrorIssue[]
}

/**
 * An error meant for the client: its `code` and `message` are sent as they are
 * (`{ error: { code, message } }`, a protocol `error`, or a close reason), so the message
 * must not carry secrets or internals. Anything that is not a FlumenError is reported as
 * `INTERNAL` with a generic message.
 *
 * It is Hono's `HTTPException`: any Hono app (a plain `new Hono()`, a sub-app) answers it with
 * its status, headers and JSON body through `getResponse()`, as it does for hono/jwt's errors.
 */
export class FlumenError extends HTTPException {
  override readonly name = 'FlumenError'
  readonly code: FlumenErrorCode
  override readonly status: ContentfulStatusCode
  readonly closeCode: number
  readonly headers: Readonly<Record<string, string>> | undefined
  readonly issues: readonly ErrorIssue[] | undefined

  constructor(code: FlumenErrorCode, message?: string, options: FlumenErrorOptions = {}) {
    const info = errorCodes[code]
    super(info.status, { message: message ?? info.message, cause: options.cause })
    this.code = code
    this.status = info.status
    this.closeCode = info.closeCode
    this.headers = options.headers
    this.issues = options.issues
  }

  /** The JSON error response: the error's status, its headers, `{ error: { code, message } }`. */
  override getResponse(): Response {
    return errorResponse(this)
  }
}

/** The JSON body of every Flumen error response. */
export interface ErrorBody {
  error: { code: FlumenErrorCode; message: string; issues?: readonly ErrorIssue[] }
}

const statusToCode = new Map<number, FlumenErrorCode>(
  (Object.entries(errorCodes) as [FlumenErrorCode, CodeInfo][])
    .filter(([code]) => code !== 'SLOW_CONSUMER')
    .map(([code, info]) => [info.status, code]),
)

/** Maps any HTTP status to the closest error code (unknown 4xx → BAD_REQUEST, 5xx → INTERNAL). */
export const codeForStatus = (status: number): FlumenErrorCode =>
  statusToCode.get(status) ?? (status >= 500 ? 'INTERNAL' : 'BAD_REQUEST')

/**
 * Turns anything thrown into what the client may see. FlumenError and HTTPException keep
 * their status and message (and the headers of an HTTPException's own Response, such as
 * `WWW-Authenticate`); everything else becomes a generic INTERNAL error, so no stack, path or
 * driver message ever reaches a client.
 */
export const toFlumenError = (err: unknown): FlumenError => {
  if (err instanceof FlumenError) return err
  if (err instanceof HTTPException) {
    const code = codeForStatus(err.status)
    const message = err.status >= 500 ? errorCodes[code].message : err.message || errorCodes[code].message
    return new FlumenError(code, message, { cause: err, headers: ownHeaders(err.res) })
  }
  return new FlumenError('INTERNAL', undefined, { cause: err })
}

// Headers of an HTTPException's own Response worth keeping on the JSON answer (not its body's).
const bodyHeaders = new Set(['content-type', 'content-length', 'content-encoding', 'transfer-encoding'])
const ownHeaders = (res: Response | undefined): Record<string, string> | undefined => {
  if (!res) return undefined
  const headers: Record<string, string> = {}
  res.headers.forEach((value, key) => {
    if (!bodyHeaders.has(key)) headers[key] = value
  })
  return headers
}

/** `{ error: { code, message } }` for an error. */
export const errorBody = (err: FlumenError): ErrorBody => ({
  error: err.issues
    ? { code: err.code, message: err.message, issues: err.issues }
    : { code: err.code, message: err.message },
})

/** A JSON error response with the error's status and headers. */
export const errorResponse = (err: FlumenError): Response =>
  new Response(JSON.stringify(errorBody(err)), {
    status: err.status,
    headers: { 'content-type': 'application/json; charset=UTF-8', ...err.headers },
  })
