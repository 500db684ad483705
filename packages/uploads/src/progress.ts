// Progress of an upload as events on a topic (a hub fits): throttled to one per interval while the
// bytes arrive, then `upload-done` or `upload-failed`. uploads() and tus() publish the same events.
import { nonNegativeNumber } from '@flumen/core'
import type { Context, Env } from 'hono'
import type { StoredFile } from './storage.js'

/**
 * Where progress events go: a hub (`createHub()`) fits. `upload-progress` events go volatile (a
 * subscriber that is behind or away misses ticks, not the outcome); `upload-done` and
 * `upload-failed` are stored.
 */
export interface ProgressPublisher {
  publish(topic: string, data: unknown, options?: { volatile: true }): Promise<unknown>
}

/** `E` is the Env of the route (`AuthEnv` from @flumen/auth types `c.var.user`). */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface ProgressOptions<E extends Env = any> {
  publisher: ProgressPublisher
  /**
   * The topic of this request's events (e.g. `user:<id>`); undefined sends none. `metadata` is a tus
   * upload's `Upload-Metadata` (so a room named at creation receives its PATCHes' progress), `{}` for
   * `uploads()`.
   */
  topic: (c: Context<E>, metadata: Readonly<Record<string, string>>) => string | undefined
  /**
   * At most one progress event per upload this often (plus the final one).
   * @default 250
   */
  intervalMs?: number
  /**
   * What is published for each event, e.g. the event with who uploads (`{ ...event, from: c.var.user }`)
   * when others see it (a room). It must be JSON.
   * @default the event as it is
   */
  toMessage?: (event: UploadEvent, c: Context<E>) => unknown
}

/** The events published to the progress topic. */
export type UploadEvent =
  | {
      type: 'upload-progress'
      uploadId: string
      /** Request bytes received so far, and the request's Content-Length when known. */
      received: number
      total: number | undefined
      file: { field: string; name: string; bytes: number } | undefined
    }
  | { type: 'upload-done'; uploadId: string; files: StoredFile[] }
  | { type: 'upload-failed'; uploadId: string; error: { code: string; message: string } }

/** Sends one upload's events; `progress(…)` events at most once per interval unless forced. */
export interface ProgressReporter {
  progress(
    event: Omit<Extract<UploadEvent, { type: 'upload-progress' }>, 'type' | 'uploadId'>,
    force?: boolean,
  ): void
  done(files: StoredFile[]): void
  failed(error: { code: string; message: string }): void
}

/**
 * Checks progress options up front; returns what reports one request's upload (undefined when the
 * route has no progress, or the request's topic is undefined).
 */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const progressReporting = <E extends Env = any>(
  owner: string,
  options: ProgressOptions<E> | undefined,
): ((
  c: Context<E>,
  uploadId: string,
  metadata?: Readonly<Record<string, string>>,
) => ProgressReporter | undefined) => {
  if (!options) return () => undefined
  if (typeof options.publisher?.publish !== 'function' || typeof options.topic !== 'function')
    throw new Error(`${owner}: progress needs a publisher with publish() and a topic function`)
  const intervalMs = nonNegativeNumber(owner, 'progress.intervalMs', options.intervalMs ?? 250)
  const { toMessage } = options
  if (toMessage !== undefined && typeof toMessage !== 'function')
    throw new Error(`${owner}: progress.toMessage must be a function`)
  return (c, uploadId, metadata = {}) => {
    const topic = options.topic(c, metadata)
    if (topic === undefined) return undefined
    const publish = (event: UploadEvent): void => {
      const message = toMessage ? toMessage(event, c) : event
      const sent =
        event.type === 'upload-progress'
          ? options.publisher.publish(topic, message, { volatile: true })
          : options.publisher.publish(topic, message)
      sent.catch(() => {})
    }
    let lastAt = 0
    return {
      progress: (event, force = false) => {
        const now = Date.now()
        if (!force && now - lastAt < intervalMs) return
        lastAt = now
        publish({ type: 'upload-progress', uploadId, ...event })
      },
      done: (files) => publish({ type: 'upload-done', uploadId, files }),
      failed: (error) => publish({ type: 'upload-failed', uploadId, error }),
    }
  }
}
