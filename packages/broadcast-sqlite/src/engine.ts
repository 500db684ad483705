import type { Engine, EngineListener, EngineMessage, HistoryResult } from '@flumen/broadcast'
import { LocalPresence, localVolatile, recoveryOf } from '@flumen/broadcast'
import { FlumenError } from '@flumen/core'
import type { SqliteDatabase } from './database.js'
import { openDatabase } from './database.js'
import type { SqliteEngineOptions } from './options.js'
import { resolveOptions } from './options.js'
import { Store } from './store.js'

/** What the SQLite engine holds now, for metrics and tests. */
export interface SqliteEngineStats {
  /** Bytes of history in the database (payload characters plus 64 per message). */
  readonly bytes: number
  /** Publishes committed, and the transactions they took (group commit: one per event-loop turn). */
  readonly published: number
  readonly commits: number
}

export interface SqliteEngine extends Engine {
  readonly stats: SqliteEngineStats
  /** The database (better-sqlite3), for backups (`db.backup(path)`) and inspection. */
  readonly db: SqliteDatabase
}

interface PendingPublish {
  readonly topic: string
  readonly data: string
  readonly origin: string | undefined
  readonly key: string | undefined
  resolve(message: EngineMessage): void
  reject(err: unknown): void
}

/**
 * A durable engine for one process: history, offsets and epochs in a SQLite file (WAL), so a
 * restart loses nothing and clients recover exactly what they missed. Publishes of one event-loop
 * turn are committed in one transaction and acknowledged after it; delivery follows the commit.
 * Presence is about live connections: it stays in memory.
 */
export const sqliteEngine = (options: SqliteEngineOptions): SqliteEngine => {
  const resolved = resolveOptions(options)
  const { history, maxTotalBytes, dedupeWindowMs, pruneBatch, logError } = resolved
  const db = openDatabase(resolved.file, resolved)
  const store = new Store(db)
  const subscribed = new Set<string>()
  let listener: EngineListener | undefined
  const presence = new LocalPresence(
    () => listener,
    (topic) => subscribed.has(topic),
  )
  let closed = false
  let published = 0
  let commits = 0

  let queue: PendingPublish[] = []
  const commitQueue = (): void => {
    const batch = queue
    queue = []
    const now = Date.now()
    let stored: { message: EngineMessage; repeat: boolean }[]
    try {
      stored = db.transaction(() =>
        batch.map((pending) => {
          const { topic, data, origin, key } = pending
          const first = key === undefined ? undefined : store.findKey(topic, key, now - dedupeWindowMs)
          const position = first ?? store.append(topic, data, origin, key, now, history)
          const message: EngineMessage =
            origin === undefined ? { topic, data, ...position } : { topic, data, ...position, origin }
          return { message, repeat: first !== undefined }
        }),
      )()
    } catch (err) {
      const error = new FlumenError('UNAVAILABLE', 'sqliteEngine: the publish could not be stored', {
        cause: err,
      })
      for (const pending of batch) pending.reject(error)
      logError(err)
      return
    }
    commits++
    // Acknowledged once committed; a repeat of a stored publish is answered, not delivered again.
    stored.forEach(({ message, repeat }, i) => {
      batch[i]!.resolve(message)
      if (repeat) return
      published++
      if (subscribed.has(message.topic)) listener?.onMessage(message)
    })
  }

  const prune = (): void => {
    if (closed) return
    const now = Date.now()
    try {
      db.transaction(() => {
        store.pruneAged(now - history.ttlMs, pruneBatch)
        store.pruneTotal(maxTotalBytes, pruneBatch)
        store.pruneKeysAndTopics(now - dedupeWindowMs, now - history.ttlMs, pruneBatch)
      })()
    } catch (err) {
      logError(err)
    }
  }
  const pruner = setInterval(prune, resolved.pruneIntervalMs)
  pruner.unref()

  const assertOpen = (): void => {
    if (closed) throw new Error('sqliteEngine: closed')
  }

  return {
    name: 'sqlite',
    db,
    get stats() {
      return { bytes: store.totalBytes, published, commits }
    },
    attach(next) {
      listener = next
    },
    publish(topic, data, publishOptions = {}) {
      return new Promise((resolve, reject) => {
        if (closed) {
          reject(new Error('sqliteEngine: closed'))
          return
        }
        if (
          queue.push({
            topic,
            data,
            origin: publishOptions.origin,
            key: publishOptions.key,
            resolve,
            reject,
          }) === 1
        )
          setImmediate(commitQueue)
      })
    },
    ...localVolatile(
      () => listener,
      (topic) => subscribed.has(topic),
      assertOpen,
    ),
    async subscribe(topic) {
      assertOpen()
      subscribed.add(topic)
    },
    async unsubscribe(topic) {
      subscribed.delete(topic)
    },
    async history(topic, since): Promise<HistoryResult> {
      assertOpen()
      const position = store.position(topic)
      return recoveryOf(since, position, () =>
        store.after(topic, position.epoch, since!.offset, Date.now() - history.ttlMs),
      )
    },
    async historyLength(topic) {
      assertOpen()
      return store.count(topic, Date.now() - history.ttlMs)
    },
    async loadSnapshot(key) {
      assertOpen()
      return store.snapshot(key)
    },
    async saveSnapshot(key, value) {
      assertOpen()
      store.saveSnapshot(key, value)
    },
    ...presence.engineMethods(assertOpen),
    async close() {
      if (closed) return
      closed = true
      clearInterval(pruner)
      // Publishes already queued are committed before the file closes.
      if (queue.length > 0) commitQueue()
      subscribed.clear()
      presence.clear()
      db.close()
    },
  }
}
