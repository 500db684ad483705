import type { IncomingMessage, ServerResponse } from 'node:http'
import { errorBody, FlumenError } from './errors.js'
import { integerAtLeast, nonNegativeNumber, positiveInteger } from './options.js'

/** How slow a request body may arrive before it is cut with 408. */
export interface BodyTimeouts {
  /**
   * A body that sends nothing for this long is cut; 0 turns it off.
   * @default 30_000
   */
  idleTimeoutMs: number
  /**
   * Slowloris guard: over each `rateWindowMs`, a body must average at least this many bytes per
   * second. 0 turns it off.
   * @default 1024
   */
  minBytesPerSecond: number
  /** @default 10_000 */
  rateWindowMs: number
}

/**
 * What is read of a body whose answer went out before it was read (a 413, a 401 on an upload): the
 * rest is read and thrown away so that a client still sending can read the answer, then, past
 * either bound, the connection is closed.
 */
export interface DiscardLimits {
  /** @default 67_108_864 (64 MiB) */
  maxBytes: number
  /** @default 30_000 */
  timeoutMs: number
}

export const bodyDefaults: { readonly timeouts: BodyTimeouts; readonly discard: DiscardLimits } = {
  timeouts: { idleTimeoutMs: 30_000, minBytesPerSecond: 1024, rateWindowMs: 10_000 },
  discard: { maxBytes: 64 * 1024 * 1024, timeoutMs: 30_000 },
}

/**
 * Checks pace options up front and fills in the defaults (`false`: no pace guard). Every guard of a
 * body (serve's, an upload route's) takes them the same way; `prefix` names the option group.
 */
export const resolveBodyTimeouts = (
  owner: string,
  given: Partial<BodyTimeouts> | false | undefined,
  prefix = '',
): BodyTimeouts => {
  if (given === false)
    return { idleTimeoutMs: 0, minBytesPerSecond: 0, rateWindowMs: bodyDefaults.timeouts.rateWindowMs }
  const pick = (name: keyof BodyTimeouts): number => given?.[name] ?? bodyDefaults.timeouts[name]
  return {
    idleTimeoutMs: integerAtLeast(owner, `${prefix}idleTimeoutMs`, pick('idleTimeoutMs'), 0),
    minBytesPerSecond: nonNegativeNumber(owner, `${prefix}minBytesPerSecond`, pick('minBytesPerSecond')),
    rateWindowMs: positiveInteger(owner, `${prefix}rateWindowMs`, pick('rateWindowMs')),
  }
}

/** What happens when a guarded body is too slow: the owner answers (and the connection closes). */
export type BodyTimeoutHandler = (error: FlumenError) => void

/** Whether the request announces a body (Content-Length above 0, or a Transfer-Encoding). */
export const hasRequestBody = (req: IncomingMessage): boolean => {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Watches one request body: cuts it when it arrives too slowly, and once the answer went out before
 * the body ended, reads and discards the rest within `DiscardLimits`. Progress is read from the
 * socket's byte count, so watching never consumes the body; while the app holds a full buffer (its
 * own backpressure) the client is not the slow party and the clocks wait.
 *
 * The server creates one per request with a body (`c.env.body`); a route that reads the body
 * itself takes it over with its own limits and its own answer (`guard()`).
 */
export class RequestBody {
  private timeouts: BodyTimeouts
  private readonly serverTimeouts: BodyTimeouts
  private onTimeout: BodyTimeoutHandler
  private timer: NodeJS.Timeout | undefined
  private lastBytes = 0
  private lastProgressAt = 0
  private windowStart = 0
  private windowBytes = 0
  private discardFrom: number | undefined
  private discardUntil = 0
  private done = false
  private closeWhenRead = false
  /** Set when the default handler answered 408 itself: the app's later answer is dropped. */
  answered = false

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    timeouts: BodyTimeouts,
    private readonly discard: DiscardLimits,
  ) {
    this.timeouts = timeouts
    this.serverTimeouts = timeouts
    this.onTimeout = this.answerTimeout
    req.once('end', this.stop)
    res.once('close', this.stop)
    res.once('finish', this.onAnswered)
    // A body that arrived with its head is complete by the next turn: no timer for it.
    setImmediate(this.arm)
  }

  /**
   * A route that reads the body takes the guard over: its limits replace the server's, and a
   * too-slow body calls `onTimeout` instead of the server's own 408.
   */
  guard(timeouts: Partial<BodyTimeouts>, onTimeout: BodyTimeoutHandler): void {
    this.timeouts = { ...this.serverTimeouts, ...timeouts }
    this.onTimeout = onTimeout
    this.rearm()
  }

  /**
   * The route stopped reading (it failed, say): the server's limits and answer apply again, and
   * once the route answered, the rest of the body is discarded.
   */
  release(): void {
    this.timeouts = this.serverTimeouts
    this.onTimeout = this.answerTimeout
    this.rearm()
  }

  private rearm(): void {
    if (!this.timer) return
    clearInterval(this.timer)
    this.timer = undefined
    this.arm()
  }

  /**
   * The app's answer, before it is written. An answer that asks to close the connection while the
   * body is still arriving would reset a client that is still sending: the connection stays open
   * until the rest is discarded, and closes then.
   */
  beforeAnswer(response: Response): Response {
    // After a pace violation the connection closes as asked: the client is not sending much.
    if (this.done || this.req.complete || !/\bclose\b/i.test(response.headers.get('connection') ?? ''))
      return response
    response.headers.delete('connection')
    this.closeWhenRead = true
    return response
  }

  /** Stops watching (the body ended, or the connection closed). */
  readonly stop = (): void => {
    if (this.done) return
    this.done = true
    clearInterval(this.timer)
    this.timer = undefined
    this.req.off('end', this.stop)
    this.res.off('close', this.stop)
    this.res.off('finish', this.onAnswered)
    if (this.closeWhenRead && this.req.complete && this.res.writableFinished) this.req.socket?.end()
  }

  private readonly arm = (): void => {
    if (this.done || this.timer) return
    if (this.req.complete) {
      this.stop()
      return
    }
    const now = Date.now()
    this.lastBytes = this.bytes()
    this.lastProgressAt = now
    this.windowStart = now
    this.windowBytes = 0
    const { idleTimeoutMs, rateWindowMs } = this.timeouts
    const periodMs = Math.max(10, Math.min(idleTimeoutMs || 1_000, rateWindowMs, 1_000) / 4)
    this.timer = setInterval(this.check, periodMs)
    this.timer.unref()
  }

  private bytes(): number {
    return this.req.socket?.bytesRead ?? 0
  }

  private readonly check = (): void => {
    if (this.req.complete || this.req.destroyed) {
      this.stop()
      return
    }
    const now = Date.now()
    const bytes = this.bytes()
    const arrived = bytes - this.lastBytes
    this.lastBytes = bytes
    if (this.discardFrom !== undefined) {
      if (bytes - this.discardFrom > this.discard.maxBytes || now > this.discardUntil) {
        this.cut()
        return
      }
    }
    // The app holds a full buffer: reading is paused by its backpressure, not the client's pace.
    const appBehind =
      this.discardFrom === undefined && this.req.readableLength >= this.req.readableHighWaterMark
    if (arrived > 0 || appBehind) this.lastProgressAt = now
    if (appBehind) {
      this.windowStart = now
      this.windowBytes = 0
      return
    }
    this.windowBytes += arrived
    const { idleTimeoutMs, minBytesPerSecond, rateWindowMs } = this.timeouts
    if (idleTimeoutMs > 0 && now - this.lastProgressAt >= idleTimeoutMs) {
      this.violate(new FlumenError('TIMEOUT', `No data for ${idleTimeoutMs} ms`))
      return
    }
    if (minBytesPerSecond > 0 && now - this.windowStart >= rateWindowMs) {
      const rate = (this.windowBytes * 1000) / (now - this.windowStart)
      if (rate < minBytesPerSecond) {
        this.violate(new FlumenError('TIMEOUT', `The body arrived slower than ${minBytesPerSecond} bytes/s`))
        return
      }
      this.windowStart = now
      this.windowBytes = 0
    }
  }

  /** The answer went out: what is left of the body is discarded, within bounds. */
  private readonly onAnswered = (): void => {
    if (this.done || this.req.complete) {
      this.stop()
      return
    }
    this.discardFrom = this.bytes()
    this.discardUntil = Date.now() + this.discard.timeoutMs
    // A body nobody read is dumped by Node itself; one a route stopped reading flows away here. A
    // reader left paused (hono/body-limit's, past its limit) would hold the kept-alive connection
    // until its timeout: with the answer out, nothing it reads can matter, so it is detached.
    if (this.req.readableFlowing === false) this.req.removeAllListeners('data')
    if (this.req.readableFlowing !== true && this.req.listenerCount('data') === 0) this.req.resume()
    this.arm()
  }

  private violate(error: FlumenError): void {
    if (this.discardFrom !== undefined || this.res.headersSent) {
      this.cut()
      return
    }
    const onTimeout = this.onTimeout
    this.stop()
    onTimeout(error)
  }

  /** The default answer: 408 JSON and the connection closed, whatever the app is doing. */
  private readonly answerTimeout = (error: FlumenError): void => {
    const res = this.res
    if (res.headersSent || res.writableEnded) {
      this.cut(error)
      return
    }
    this.answered = true
    const body = JSON.stringify(errorBody(error))
    res.writeHead(error.status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    })
    // Once the answer is out, the request ends with the error (a handler reading it gets it).
    res.end(body, () => this.cut(error))
  }

  private cut(error?: Error): void {
    this.stop()
    if (!this.req.destroyed) this.req.destroy(error)
    this.req.socket?.destroy()
  }
}
