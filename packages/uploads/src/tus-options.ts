// Options of tus(): storage, sizes and expiry, the PATCH body's pace, owners and their quotas,
// progress, accepted types.
import type { BodyTimeouts } from '@flumen/core'
import { positiveInteger, resolveBodyTimeouts, userIdOf } from '@flumen/core'
import type { Context, Env } from 'hono'
import type { ProgressOptions } from './progress.js'
import type { ResumableStore, StoredFile } from './storage.js'

/** Options of `tus<E>()`: `E` is the Env of its routes, as the callbacks see `c`. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface TusOptions<E extends Env = any> {
  storage: ResumableStore
  /**
   * Largest upload (`Tus-Max-Size`); a larger Upload-Length is 413.
   * @default 1073741824 (1 GiB)
   */
  maxSize?: number
  /**
   * An unfinished upload is removed this long after its creation (`Upload-Expires`).
   * @default 86400000 (24 hours)
   */
  expiresInMs?: number
  /**
   * A PATCH body that sends nothing for this long is cut with 408 (its bytes so far are kept); 0
   * turns it off.
   * @default 30000
   */
  idleTimeoutMs?: number
  /**
   * Slowloris guard for PATCH bodies: over each `rateWindowMs`, at least this many bytes per
   * second, or the body is cut with 408 (its bytes so far are kept). 0 turns it off.
   * @default 1024
   */
  minBytesPerSecond?: number
  /** @default 10000 */
  rateWindowMs?: number
  /**
   * Who an upload belongs to: only requests of the same owner can see (HEAD), continue (PATCH) or
   * delete it; others get 404. `undefined` means no owner (anyone with the URL).
   * @default (c) => c.var.user?.id (the user authentication put on the request)
   */
  owner?: (c: Context<E>) => string | undefined
  /**
   * Unfinished uploads one owner may have open at once; one more is 429.
   * @default 20
   */
  maxUploadsPerOwner?: number
  /**
   * Bytes (the sum of their Upload-Length) of one owner's unfinished uploads; more is 413.
   * @default 10737418240 (10 GiB)
   */
  maxBytesPerOwner?: number
  /** Progress events to a hub topic while PATCH bodies arrive, as `uploads()` sends them. */
  progress?: ProgressOptions<E>
  /** Accepted types by magic bytes, checked when the upload completes (then 415 and removed). */
  allowedTypes?: readonly string[]
  /** Runs when an upload completes, with the stored file and its metadata. */
  onComplete?: (file: StoredFile, c: Context<E>, metadata: Record<string, string>) => void | Promise<void>
}

/** The options of a tus() app, checked, with the defaults filled in. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface ResolvedTusOptions<E extends Env = any> {
  readonly storage: ResumableStore
  readonly maxSize: number
  readonly expiresInMs: number
  readonly pace: BodyTimeouts
  readonly maxUploadsPerOwner: number
  readonly maxBytesPerOwner: number
  readonly ownerOf: (c: Context<E>) => string | undefined
  readonly allowedTypes: ReadonlySet<string> | undefined
}

// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const resolveTusOptions = <E extends Env = any>(options: TusOptions<E>): ResolvedTusOptions<E> => {
  const storage = options.storage
  if (typeof storage?.createPartial !== 'function')
    throw new Error('tus: storage must be a ResumableStore (diskStorage(), memoryStorage() or your own)')
  const ownerOf: (c: Context<E>) => string | undefined = options.owner ?? userIdOf
  if (typeof ownerOf !== 'function') throw new Error('tus: owner must be a function')
  return {
    storage,
    maxSize: positiveInteger('tus', 'maxSize', options.maxSize ?? 1024 ** 3),
    expiresInMs: positiveInteger('tus', 'expiresInMs', options.expiresInMs ?? 86_400_000),
    pace: resolveBodyTimeouts('tus', options),
    maxUploadsPerOwner: positiveInteger('tus', 'maxUploadsPerOwner', options.maxUploadsPerOwner ?? 20),
    maxBytesPerOwner: positiveInteger('tus', 'maxBytesPerOwner', options.maxBytesPerOwner ?? 10 * 1024 ** 3),
    ownerOf,
    allowedTypes: options.allowedTypes ? new Set(options.allowedTypes) : undefined,
  }
}
