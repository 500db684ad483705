import type { EngineMessage } from './engine.js'

/** Bytes a message counts for: its payload's characters plus this much for the entry itself. */
export const messageOverheadBytes = 64

/**
 * One topic's recent messages in offset order, with the time each was stored and their size:
 * appended at the end, dropped from the front, read from any offset. A queue over an array whose
 * consumed head is compacted away now and then, so every operation is O(1) amortized.
 */
export class HistoryLog {
  private messages: EngineMessage[] = []
  private storedAt: number[] = []
  private sizes: number[] = []
  private head = 0
  /** Bytes of the messages kept (see `messageOverheadBytes`). */
  bytes = 0

  get length(): number {
    return this.messages.length - this.head
  }

  /** Offset of the oldest message kept, or undefined when empty. */
  get oldestOffset(): number | undefined {
    return this.messages[this.head]?.offset
  }

  get oldestStoredAt(): number | undefined {
    return this.storedAt[this.head]
  }

  push(message: EngineMessage, now: number): number {
    const size = message.data.length + messageOverheadBytes
    this.messages.push(message)
    this.storedAt.push(now)
    this.sizes.push(size)
    this.bytes += size
    return size
  }

  /** Drops the oldest message; returns its size in bytes (0 when empty). */
  dropOldest(): number {
    if (this.head >= this.messages.length) return 0
    const size = this.sizes[this.head]!
    this.bytes -= size
    this.head++
    if (this.head > 1024 && this.head * 2 > this.messages.length) {
      this.messages = this.messages.slice(this.head)
      this.storedAt = this.storedAt.slice(this.head)
      this.sizes = this.sizes.slice(this.head)
      this.head = 0
    }
    return size
  }

  /** Messages with offsets after `offset`, oldest first (assumes the log holds offset + 1). */
  after(offset: number): EngineMessage[] {
    const oldest = this.oldestOffset
    if (oldest === undefined) return []
    return this.messages.slice(this.head + Math.max(0, offset + 1 - oldest))
  }
}
