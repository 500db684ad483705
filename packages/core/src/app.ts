import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Context, Env } from 'hono'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { errorResponse, FlumenError, toFlumenError } from './errors.js'
import type { FlumenServer } from './plugins.js'
import type { RequestBody } from './request-body.js'

/**
 * A WebSocket (or other) upgrade in progress. Present in `c.env.upgrade` only while the
 * middleware chain runs for an `Upgrade:` request; a transport calls `accept()` and answers
 * 2xx (a fetch Response cannot be a 101), and the server then completes the handshake with
 * the headers the middleware chain set. Any other answer is written as a plain HTTP reply.
 */
export interface UpgradeRequest {
  readonly socket: Duplex
  readonly head: Buffer
  /**
   * Takes the socket over; `complete` runs once the whole chain answered 2xx. Otherwise (a later
   * middleware answered an error, the client left) `cancel` runs instead, so the transport can
   * give back what it reserved.
   */
  accept(complete: (headers: Headers) => void, cancel?: () => void): void
}

/** What Flumen's server puts in `c.env`. */
export interface FlumenBindings {
  incoming: IncomingMessage
  /** Absent on upgrade requests: the raw socket is in `upgrade`. */
  outgoing?: ServerResponse
  /** The running server: lifecycle registration and state. */
  flumen: FlumenServer
  upgrade?: UpgradeRequest
  /** Present on requests with a body: its pace guard, which a route reading the body can take over. */
  body?: RequestBody
}

/**
 * The Env of a Flumen app. Middleware adds its variables in the chain, typed (as hono/jwt does):
 * after `auth()`, `c.var.user` is the user; on a route without it, there is no `c.var.user`.
 */
export interface FlumenEnv extends Env {
  Bindings: FlumenBindings
}

/**
 * What Flumen's server put in `c.env`, from any handler's context (a route may be typed with an Env
 * of its own that does not name the bindings). Empty outside `serve()`.
 */
export const bindingsOf = (c: Context): Partial<FlumenBindings> => c.env ?? {}

/** What authentication put in `c.var.user`, from any handler's context (undefined without auth). */
export const userOf = (c: Context): unknown => (c.var as Record<string, unknown>).user

/** The `id` of a user value (a string or number field), as a string; undefined without one. */
export const idOfUser = (user: unknown): string | undefined => {
  const id = typeof user === 'object' && user !== null ? (user as { id?: unknown }).id : undefined
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined
}

/** The `id` of what authentication put in `c.var.user`, as a string (undefined without one). */
export const userIdOf = (c: Context): string | undefined => idOfUser(userOf(c))

/** The type of `c.var.user` in an Env (unknown when the Env does not say). */
export type UserOf<E extends Env> = E extends { Variables: { user: infer User } } ? User : unknown

export interface CreateAppOptions {
  /**
   * Called with every unexpected error (answered 500 `INTERNAL`: anything thrown that is not a
   * FlumenError or HTTPException below 500); the client only ever gets
   * `{ error: { code: 'INTERNAL', message } }`.
   * @default console.error
   */
  logError?: (err: unknown, c: Context) => void
}

const defaultLogError = (err: unknown, c: Context): void => {
  console.error(`[flumen] ${c.req.method} ${c.req.path} failed:`, err)
}

/**
 * A real Hono app with Flumen's error handling: JSON bodies `{ error: { code, message } }`
 * for every error (Hono's own HTTPExceptions from `bodyLimit`, `csrf`… included, with their
 * headers) and for unknown routes, never a stack trace.
 */
export const createApp = <E extends Env = FlumenEnv>(options: CreateAppOptions = {}): Hono<E> => {
  const logError = options.logError ?? defaultLogError
  if (typeof logError !== 'function') throw new Error('createApp: logError must be a function')
  const app = new Hono<E>()
  app.onError((err, c) => {
    // Not an error answer (an HTTPException carrying a redirect, say): sent as its author built it.
    if (err instanceof HTTPException && err.res && err.status < 400) return err.getResponse()
    const flumenError = toFlumenError(err)
    // Errors the app or Flumen raised on purpose (a FlumenError, an HTTPException) are answers,
    // not failures: only the unexpected ones are logged.
    if (flumenError.code === 'INTERNAL') logError(err, c)
    return errorResponse(flumenError)
  })
  app.notFound(() => errorResponse(new FlumenError('NOT_FOUND')))
  return app
}
