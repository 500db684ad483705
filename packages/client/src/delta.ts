// Decoding a topic's deltas (docs/protocol.md, "Deltas"): Fossil's delta format on the UTF-16 code
// units of the previous message's JSON text. @flumen/broadcast encodes them.

const digitValues: Record<string, number> = {}
for (const [index, digit] of [
  ...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~',
].entries())
  digitValues[digit] = index

/** FNV-1a over the code units: the checksum a delta ends with. */
const checksum = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** A delta that does not apply to the text it was given (another base, or corrupt). */
export class DeltaError extends Error {
  override readonly name = 'DeltaError'
}

/** Applies `delta` to `source`; throws a DeltaError unless the result is what the delta describes. */
export const applyDelta = (source: string, delta: string): string => {
  let at = 0
  const readInt = (): number => {
    let value = 0
    const start = at
    for (let digit = digitValues[delta[at]!]; digit !== undefined; digit = digitValues[delta[at]!]) {
      value = value * 64 + digit
      at++
    }
    if (at === start || at - start > 8) throw new DeltaError('Malformed delta: bad number')
    return value
  }
  const length = readInt()
  if (delta[at++] !== '\n') throw new DeltaError('Malformed delta: no length')
  const parts: string[] = []
  let total = 0
  while (at < delta.length) {
    const count = readInt()
    const command = delta[at++]
    if (command === '@') {
      const offset = readInt()
      if (delta[at++] !== ',' || offset + count > source.length)
        throw new DeltaError('Delta copies outside its source')
      parts.push(source.slice(offset, offset + count))
    } else if (command === ':') {
      if (at + count > delta.length) throw new DeltaError('Malformed delta: literal past its end')
      parts.push(delta.slice(at, at + count))
      at += count
    } else if (command === ';') {
      const text = parts.join('')
      if (total !== length || checksum(text) !== count)
        throw new DeltaError('Delta result does not match its checksum')
      return text
    } else throw new DeltaError('Malformed delta: unknown command')
    total += count
    if (total > length) throw new DeltaError('Delta result longer than announced')
  }
  throw new DeltaError('Malformed delta: unterminated')
}

interface Base {
  readonly epoch: string
  readonly offset: number
  readonly text: string
}

/**
 * The data of each delta topic's last message, as JSON text: the base its next delta applies to.
 * The server's data is JSON.stringify output, so a full message's data stringifies back to it.
 */
export class DeltaBases {
  private readonly bases = new Map<string, Base>()

  /** A full message: its data becomes the topic's base. */
  record(topic: string, epoch: string, offset: number, data: unknown): void {
    this.bases.set(topic, { epoch, offset, text: JSON.stringify(data) })
  }

  /**
   * A delta message: the data's JSON text, which becomes the topic's base. Throws a DeltaError
   * when this client does not have the message before it, or the delta does not apply to it.
   */
  apply(topic: string, epoch: string, offset: number, delta: string): string {
    const base = this.bases.get(topic)
    this.bases.delete(topic)
    if (!base || base.epoch !== epoch || base.offset !== offset - 1)
      throw new DeltaError(`No base for the delta of ${topic} at ${offset}`)
    const text = applyDelta(base.text, delta)
    this.bases.set(topic, { epoch, offset, text })
    return text
  }

  forget(topic: string): void {
    this.bases.delete(topic)
  }

  clear(): void {
    this.bases.clear()
  }
}
