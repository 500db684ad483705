import type { HistoryOptions } from '@flumen/broadcast'
import { dedupeDefaults, resolveHistory } from '@flumen/broadcast'
import { positiveInteger } from '@flumen/core'

export interface SqliteEngineOptions {
  /** The database file (created when missing); its directory must exist. `':memory:'` for tests. */
  file: string
  /**
   * History kept per topic: by count, bytes (payload characters plus 64 per message) and age.
   * @default { size: 100_000, maxBytes: 16_777_216 (16 MiB), ttlMs: 604_800_000 (7 days) }
   */
  history?: HistoryOptions
  /**
   * Bytes of history across every topic; past it, the oldest messages go first (in the background).
   * @default 1_073_741_824 (1 GiB)
   */
  maxTotalBytes?: number
  /**
   * SQLite's `synchronous` in WAL mode. `'normal'`: an acknowledged publish survives the process
   * crashing or being killed, not the machine losing power (the last commits may be lost then; the
   * database stays consistent). `'full'`: it survives a power loss too, at one fsync per commit.
   * @default 'normal'
   */
  synchronous?: 'normal' | 'full'
  /**
   * How often messages past their age or the total bytes are pruned, and old publish keys dropped;
   * each pass deletes at most `pruneBatch` rows, so a publish never waits long behind it.
   * @default 5_000
   */
  pruneIntervalMs?: number
  /** @default 5_000 */
  pruneBatch?: number
  /**
   * How long a publish's idempotency key is remembered (in the database: a retry after a restart is
   * still recognised).
   * @default 120_000
   */
  dedupeWindowMs?: number
  /**
   * Runs SQLite's `quick_check` when opening: a damaged file is a startup error rather than data
   * that goes missing later. Proportional to the file's size; turn it off for very large files.
   * @default true
   */
  checkOnOpen?: boolean
  /** Failures of background work (pruning). @default console.error */
  logError?: (err: unknown) => void
}

export const sqliteEngineDefaults: {
  readonly history: { readonly size: 100_000; readonly maxBytes: 16_777_216; readonly ttlMs: 604_800_000 }
  readonly maxTotalBytes: 1_073_741_824
  readonly pruneIntervalMs: 5_000
  readonly pruneBatch: 5_000
} = {
  history: { size: 100_000, maxBytes: 16_777_216, ttlMs: 604_800_000 },
  maxTotalBytes: 1_073_741_824,
  pruneIntervalMs: 5_000,
  pruneBatch: 5_000,
}

export interface ResolvedOptions {
  readonly file: string
  readonly history: Required<HistoryOptions>
  readonly maxTotalBytes: number
  readonly synchronous: 'normal' | 'full'
  readonly pruneIntervalMs: number
  readonly pruneBatch: number
  readonly dedupeWindowMs: number
  readonly checkOnOpen: boolean
  readonly logError: (err: unknown) => void
}

/** Checks options up front and fills in the defaults. */
export const resolveOptions = (options: SqliteEngineOptions): ResolvedOptions => {
  if (typeof options?.file !== 'string' || options.file.length === 0)
    throw new Error('sqliteEngine: file must be a path (or ":memory:")')
  const synchronous = options.synchronous ?? 'normal'
  if (synchronous !== 'normal' && synchronous !== 'full')
    throw new Error("sqliteEngine: synchronous must be 'normal' or 'full'")
  const integer = (
    name: 'maxTotalBytes' | 'pruneIntervalMs' | 'pruneBatch' | 'dedupeWindowMs',
    fallback: number,
  ): number => positiveInteger('sqliteEngine', name, options[name] ?? fallback)
  return {
    file: options.file,
    history: resolveHistory({ ...sqliteEngineDefaults.history, ...options.history }, 'sqliteEngine'),
    maxTotalBytes: integer('maxTotalBytes', sqliteEngineDefaults.maxTotalBytes),
    synchronous,
    pruneIntervalMs: integer('pruneIntervalMs', sqliteEngineDefaults.pruneIntervalMs),
    pruneBatch: integer('pruneBatch', sqliteEngineDefaults.pruneBatch),
    dedupeWindowMs: integer('dedupeWindowMs', dedupeDefaults.windowMs),
    checkOnOpen: options.checkOnOpen ?? true,
    logError: options.logError ?? ((err: unknown) => console.error('[flumen/broadcast-sqlite]', err)),
  }
}
