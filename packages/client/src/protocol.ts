// Protocol v1 (docs/protocol.md) as the client speaks it: the subprotocol, the server's error
// codes, and what a position in a topic's stream is. The server's own definitions are in
// @flumen/broadcast and @flumen/core; protocol.test.ts checks that both say the same.

import type { SchemaIssue } from '@flumen/contract'
import { FlumenClientError } from './errors.js'

/** The WebSocket subprotocol of protocol v1. */
export const protocolName = 'flumen.v1'

/** Codes the server answers errors with (`{"type":"error","code":…}`, HTTP bodies, close reasons). */
export type ServerErrorCode =
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

const serverErrorCodes: ReadonlySet<string> = new Set<ServerErrorCode>([
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'TIMEOUT',
  'CONFLICT',
  'TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RANGE_NOT_SATISFIABLE',
  'UPGRADE_REQUIRED',
  'RATE_LIMITED',
  'INTERNAL',
  'UNAVAILABLE',
  'SLOW_CONSUMER',
])

/** The code of a server error; one this client does not know (a newer server's) is INTERNAL. */
export const serverErrorCode = (code: unknown): ServerErrorCode =>
  typeof code === 'string' && serverErrorCodes.has(code) ? (code as ServerErrorCode) : 'INTERNAL'

const issuesOf = (issues: unknown): SchemaIssue[] | undefined =>
  Array.isArray(issues)
    ? issues
        .filter(
          (issue): issue is { message: unknown; path?: unknown } =>
            typeof issue === 'object' && issue !== null,
        )
        .map((issue) =>
          Array.isArray(issue.path)
            ? {
                message: String(issue.message),
                path: issue.path.map((p) => (typeof p === 'number' ? p : String(p))),
              }
            : { message: String(issue.message) },
        )
    : undefined

/** The error a server `{"type":"error"}` stands for, with its code, message and schema issues. */
export const serverError = (message: ServerMessage): FlumenClientError => {
  const issues = issuesOf(message.issues)
  return new FlumenClientError(
    serverErrorCode(message.code),
    String(message.message),
    issues ? { issues } : {},
  )
}

/** Where a topic's stream stands: `epoch` changes when the server lost its history. */
export interface StreamPosition {
  readonly epoch: string
  readonly offset: number
}

/** Whether `position` already includes the message at `at`. */
export const covers = (position: StreamPosition, at: StreamPosition): boolean =>
  position.epoch === at.epoch && at.offset <= position.offset

/** A message from the server, after JSON parsing; fields are read as the `type` says. */
export type ServerMessage = { readonly type?: unknown } & Readonly<Record<string, unknown>>

/**
 * A fresh idempotency key for a publish (22 URL-safe characters, 128 random bits): the server stores
 * a publish with a key it saw recently only once. `getRandomValues` works on plain-http pages too.
 */
export const publishKey = (): string => {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  let text = ''
  for (const byte of bytes) text += String.fromCharCode(byte)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
