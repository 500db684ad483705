// Options of uploads(): limits, storage, accepted types, the body's pace, progress, the answer.
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BodyTimeouts } from '@flumen/core'
import { positiveInteger, resolveBodyTimeouts } from '@flumen/core'
import type { Context, Env } from 'hono'
import { diskStorage } from './disk-storage.js'
import type { ProgressOptions } from './progress.js'
import type { FileStore, StoredFile } from './storage.js'

export interface UploadLimits {
  /**
   * Bytes per file: exactly this many is accepted, one more is 413.
   * @default 104857600 (100 MiB)
   */
  fileSize: number
  /**
   * Bytes of the whole request body.
   * @default 1073741824 (1 GiB)
   */
  totalSize: number
  /** @default 10 */
  files: number
  /** @default 100 */
  fields: number
  /**
   * Parts (files and fields together).
   * @default 1000
   */
  parts: number
  /**
   * Bytes per field value: exactly this many is accepted, one more is 413.
   * @default 65536
   */
  fieldSize: number
  /**
   * Bytes per field name.
   * @default 200
   */
  fieldNameSize: number
  /**
   * Characters of a file name.
   * @default 255
   */
  filenameLength: number
}

export interface UploadResult {
  /** Correlates progress events: the client's `Upload-Id` header when valid, else generated. */
  uploadId: string
  files: StoredFile[]
  /** Text fields; a name sent several times has an array of values. No prototype. */
  fields: Record<string, string | string[]>
}

/** Options of `uploads<E>()`: `E` is the Env of the route, as its callbacks see `c`. */
// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export interface UploadsOptions<E extends Env = any> {
  /** @default diskStorage({ dir: <os tmpdir>/flumen-uploads }) */
  storage?: FileStore
  limits?: Partial<UploadLimits>
  /**
   * Accepted file types, recognised by their magic bytes (not the declared Content-Type), e.g.
   * `['image/png', 'image/jpeg', 'application/pdf']`; others get 415. See `sniffType`.
   * @default undefined (any type)
   */
  allowedTypes?: readonly string[]
  /**
   * A request body that sends nothing for this long is cut with 408; 0 turns it off.
   * @default 30000
   */
  idleTimeoutMs?: number
  /**
   * Slowloris guard: over each `rateWindowMs`, a body must average at least this many bytes per
   * second or it is cut with 408. Legitimate long uploads are fine at any higher rate. 0 turns
   * it off.
   * @default 1024
   */
  minBytesPerSecond?: number
  /** @default 10000 */
  rateWindowMs?: number
  progress?: ProgressOptions<E>
  /**
   * Runs once the files are stored; its Response (if any) is the answer, else 201 with the
   * result as JSON. If it throws, the files of the request are removed.
   */
  onComplete?: (result: UploadResult, c: Context<E>) => Response | undefined | Promise<Response | undefined>
}

export const uploadLimitDefaults: UploadLimits = {
  fileSize: 100 * 1024 * 1024,
  totalSize: 1024 * 1024 * 1024,
  files: 10,
  fields: 100,
  parts: 1000,
  fieldSize: 64 * 1024,
  fieldNameSize: 200,
  filenameLength: 255,
}

/** The options of an uploads() route, checked, with the defaults filled in. */
export interface ResolvedUploadsOptions {
  readonly limits: UploadLimits
  readonly storage: FileStore
  readonly allowedTypes: ReadonlySet<string> | undefined
  readonly pace: BodyTimeouts
}

// biome-ignore lint/suspicious/noExplicitAny: Hono's own default Env for middleware is any
export const resolveUploadsOptions = <E extends Env = any>(
  options: UploadsOptions<E>,
): ResolvedUploadsOptions => {
  const limits: UploadLimits = { ...uploadLimitDefaults }
  for (const [key, value] of Object.entries(options.limits ?? {}) as [keyof UploadLimits, number][]) {
    if (!(key in uploadLimitDefaults)) throw new Error(`uploads: unknown limit ${key}`)
    limits[key] = positiveInteger('uploads', `limits.${key}`, value)
  }
  return {
    limits,
    storage: options.storage ?? diskStorage({ dir: join(tmpdir(), 'flumen-uploads') }),
    allowedTypes: options.allowedTypes ? new Set(options.allowedTypes) : undefined,
    pace: resolveBodyTimeouts('uploads', options),
  }
}
