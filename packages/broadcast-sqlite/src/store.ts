// The engine's reads and writes, as prepared statements over the tables of database.ts. Every
// method is synchronous (better-sqlite3); the engine batches writes into one transaction a turn.
import { randomBytes } from 'node:crypto'
import type { EngineMessage, StreamPosition } from '@flumen/broadcast'
import type { SqliteDatabase } from './database.js'

/** Bytes a message counts for: its payload's characters plus this much (as the other engines). */
export const messageOverheadBytes = 64

interface TopicRow {
  epoch: string
  last_offset: number
  count: number
  bytes: number
}

interface MessageRow {
  offset: number
  data: string
  origin: string | null
}

const bucketOf = (topic: string): number => {
  // FNV-1a, as the memory engine: cheap, run when a topic is created, forgotten or read without state.
  let hash = 0x811c9dc5
  for (let i = 0; i < topic.length; i++) hash = Math.imul(hash ^ topic.charCodeAt(i), 0x01000193)
  return (hash >>> 0) & 0xffff
}

export class Store {
  /** The database's own id, part of every epoch: positions of another database never recover. */
  private readonly base: string
  private readonly statements
  /** Bytes of history in all topics (kept in step with the `bytes` column). */
  totalBytes: number

  constructor(db: SqliteDatabase) {
    const existing = db.prepare("SELECT value FROM meta WHERE key = 'base'").get() as
      | { value: string }
      | undefined
    this.base = existing?.value ?? randomBytes(8).toString('base64url')
    if (!existing) db.prepare("INSERT INTO meta (key, value) VALUES ('base', ?)").run(this.base)
    this.statements = {
      topic: db.prepare<[string], TopicRow>(
        'SELECT epoch, last_offset, count, bytes FROM topics WHERE name = ?',
      ),
      createTopic: db.prepare<[string, string, number]>(
        'INSERT INTO topics (name, epoch, last_offset, count, bytes, updated_at) VALUES (?, ?, 0, 0, 0, ?)',
      ),
      updateTopic: db.prepare<[number, number, number, number, string]>(
        'UPDATE topics SET last_offset = ?, count = ?, bytes = ?, updated_at = ? WHERE name = ?',
      ),
      append: db.prepare<[string, number, string, string | null, number, number]>(
        'INSERT INTO messages (topic, offset, data, origin, stored_at, size) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      oldest: db.prepare<[string, number], { offset: number; size: number }>(
        'SELECT offset, size FROM messages WHERE topic = ? ORDER BY offset LIMIT ?',
      ),
      dropUpTo: db.prepare<[string, number]>('DELETE FROM messages WHERE topic = ? AND offset <= ?'),
      count: db.prepare<[string, number], { count: number }>(
        'SELECT COUNT(*) AS count FROM messages WHERE topic = ? AND stored_at >= ?',
      ),
      after: db.prepare<[string, number, number], MessageRow>(
        'SELECT offset, data, origin FROM messages WHERE topic = ? AND offset > ? AND stored_at >= ? ORDER BY offset',
      ),
      key: db.prepare<[string, string], { epoch: string; offset: number; at: number }>(
        'SELECT epoch, offset, at FROM publish_keys WHERE topic = ? AND key = ?',
      ),
      rememberKey: db.prepare<[string, string, string, number, number]>(
        'INSERT OR REPLACE INTO publish_keys (topic, key, epoch, offset, at) VALUES (?, ?, ?, ?, ?)',
      ),
      generation: db.prepare<[number], { generation: number }>(
        'SELECT generation FROM generations WHERE bucket = ?',
      ),
      bumpGeneration: db.prepare<[number]>(
        'INSERT INTO generations (bucket, generation) VALUES (?, 1) ON CONFLICT (bucket) DO UPDATE SET generation = generation + 1',
      ),
      aged: db.prepare<[number, number], { topic: string; offset: number; size: number }>(
        'SELECT topic, offset, size FROM messages WHERE stored_at < ? ORDER BY stored_at LIMIT ?',
      ),
      oldestAnywhere: db.prepare<[number], { topic: string; offset: number; size: number }>(
        'SELECT topic, offset, size FROM messages ORDER BY stored_at LIMIT ?',
      ),
      dropOne: db.prepare<[string, number]>('DELETE FROM messages WHERE topic = ? AND offset = ?'),
      shrinkTopic: db.prepare<[number, number, string]>(
        'UPDATE topics SET count = count - ?, bytes = bytes - ? WHERE name = ?',
      ),
      expireKeys: db.prepare<[number, number]>(
        'DELETE FROM publish_keys WHERE rowid IN (SELECT rowid FROM publish_keys WHERE at < ? LIMIT ?)',
      ),
      idleTopics: db.prepare<[number, number], { name: string }>(
        'SELECT name FROM topics WHERE count = 0 AND updated_at < ? LIMIT ?',
      ),
      dropTopic: db.prepare<[string]>('DELETE FROM topics WHERE name = ?'),
      total: db.prepare<[], { bytes: number | null }>('SELECT sum(bytes) AS bytes FROM topics'),
      snapshot: db.prepare<[string], { value: string }>('SELECT value FROM snapshots WHERE key = ?'),
      saveSnapshot: db.prepare<[string, string, number]>(
        'INSERT OR REPLACE INTO snapshots (key, value, saved_at) VALUES (?, ?, ?)',
      ),
    }
    this.totalBytes = this.statements.total.get()?.bytes ?? 0
  }

  /** The epoch a topic without state has (and gets when it is created). */
  private epochOf(topic: string): string {
    const generation = this.statements.generation.get(bucketOf(topic))?.generation ?? 0
    return `${this.base}-${generation.toString(36)}`
  }

  /** Where the topic's stream stands; a topic without state is at offset 0 of its epoch. */
  position(topic: string): StreamPosition {
    const row = this.statements.topic.get(topic)
    return row ? { epoch: row.epoch, offset: row.last_offset } : { epoch: this.epochOf(topic), offset: 0 }
  }

  /** The snapshot kept under `key`, if any. */
  snapshot(key: string): string | undefined {
    return this.statements.snapshot.get(key)?.value
  }

  saveSnapshot(key: string, value: string): void {
    this.statements.saveSnapshot.run(key, value, Date.now())
  }

  /** How many of the topic's messages are not older than `notBefore` (ms). */
  count(topic: string, notBefore: number): number {
    return this.statements.count.get(topic, notBefore)?.count ?? 0
  }

  /** Messages after `offset` not older than `since` (ms), oldest first. */
  after(topic: string, epoch: string, offset: number, notBefore: number): EngineMessage[] {
    return this.statements.after
      .all(topic, offset, notBefore)
      .map((row) =>
        row.origin === null
          ? { topic, data: row.data, epoch, offset: row.offset }
          : { topic, data: row.data, epoch, offset: row.offset, origin: row.origin },
      )
  }

  /** The position a key was published at, when it is remembered under the topic's epoch since `notBefore`. */
  findKey(topic: string, key: string, notBefore: number): StreamPosition | undefined {
    const row = this.statements.key.get(topic, key)
    if (!row || row.at < notBefore) return undefined
    const current = this.statements.topic.get(topic)
    return current && current.epoch === row.epoch ? { epoch: row.epoch, offset: row.offset } : undefined
  }

  /**
   * Appends one message (inside the caller's transaction) and trims the topic to its bounds; with
   * `bounds.size` 0 (history off) only the offset moves.
   */
  append(
    topic: string,
    data: string,
    origin: string | undefined,
    key: string | undefined,
    now: number,
    bounds: { size: number; maxBytes: number },
  ): StreamPosition {
    let row = this.statements.topic.get(topic)
    if (!row) {
      const epoch = this.epochOf(topic)
      this.statements.createTopic.run(topic, epoch, now)
      row = { epoch, last_offset: 0, count: 0, bytes: 0 }
    }
    const offset = row.last_offset + 1
    let { count, bytes } = row
    if (bounds.size > 0) {
      const size = data.length + messageOverheadBytes
      this.statements.append.run(topic, offset, data, origin ?? null, now, size)
      count++
      bytes += size
      this.totalBytes += size
      if (count > bounds.size || bytes > bounds.maxBytes) {
        // The oldest go first until both bounds hold (a message alone over maxBytes is not kept).
        let upTo = 0
        for (const old of this.statements.oldest.iterate(topic, count)) {
          if (count <= bounds.size && bytes <= bounds.maxBytes) break
          upTo = old.offset
          count--
          bytes -= old.size
          this.totalBytes -= old.size
        }
        if (upTo > 0) this.statements.dropUpTo.run(topic, upTo)
      }
    }
    this.statements.updateTopic.run(offset, count, bytes, now, topic)
    if (key !== undefined) this.statements.rememberKey.run(topic, key, row.epoch, offset, now)
    return { epoch: row.epoch, offset }
  }

  /** Deletes up to `limit` messages stored before `before`; returns how many. */
  pruneAged(before: number, limit: number): number {
    return this.dropRows(this.statements.aged.all(before, limit))
  }

  /** Deletes the oldest messages of any topic until the total fits (at most `limit`). */
  pruneTotal(maxTotalBytes: number, limit: number): number {
    if (this.totalBytes <= maxTotalBytes) return 0
    const rows: { topic: string; offset: number; size: number }[] = []
    let excess = this.totalBytes - maxTotalBytes
    for (const row of this.statements.oldestAnywhere.iterate(limit)) {
      rows.push(row)
      excess -= row.size
      if (excess <= 0) break
    }
    return this.dropRows(rows)
  }

  /** Forgets publish keys older than `before`, and topics with no message left since `idleBefore`. */
  pruneKeysAndTopics(before: number, idleBefore: number, limit: number): void {
    this.statements.expireKeys.run(before, limit)
    for (const { name } of this.statements.idleTopics.all(idleBefore, limit)) {
      this.statements.dropTopic.run(name)
      // A new epoch for the next state of this topic's bucket: an old position never recovers into it.
      this.statements.bumpGeneration.run(bucketOf(name))
    }
  }

  private dropRows(rows: readonly { topic: string; offset: number; size: number }[]): number {
    const perTopic = new Map<string, { count: number; bytes: number }>()
    for (const row of rows) {
      this.statements.dropOne.run(row.topic, row.offset)
      const entry = perTopic.get(row.topic) ?? { count: 0, bytes: 0 }
      entry.count++
      entry.bytes += row.size
      perTopic.set(row.topic, entry)
      this.totalBytes -= row.size
    }
    for (const [topic, { count, bytes }] of perTopic) this.statements.shrinkTopic.run(count, bytes, topic)
    return rows.length
  }
}
