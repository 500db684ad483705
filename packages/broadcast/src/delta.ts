// Delta compression of a topic's messages (docs/protocol.md, "Deltas"): the encoder of Fossil's
// delta format, run on the UTF-16 code units of JSON text rather than on bytes, so that a delta is
// a string that JSON carries losslessly, over WebSocket and SSE alike. @flumen/client decodes it.

/** Block size of the source index: matches shorter than this are sent as literals. */
const blockSize = 16
/**
 * Candidate blocks tried per position (Fossil tries 250): JSON repeats its structure, so a block's
 * hash chain holds many near-matches, and every one costs a comparison.
 */
const maxCandidates = 32
/** A copy this long is taken at once, without trying the other candidates for a longer one. */
const goodEnough = 256
/**
 * Code units compared per unit of input, at most: repetitive text would otherwise cost up to
 * `maxCandidates` comparisons per position. Past the budget there is no delta: the data goes whole.
 */
const workPerUnit = 4
const digits = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~'

const encodeInt = (value: number): string => {
  let text = digits[value % 64]!
  for (let rest = Math.floor(value / 64); rest > 0; rest = Math.floor(rest / 64))
    text = digits[rest % 64] + text
  return text
}

const digitCount = (value: number): number => {
  let count = 1
  for (let limit = 64; value >= limit; limit *= 64) count++
  return count
}

/** FNV-1a over the code units: what a decoder checks its result against. */
export const deltaChecksum = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** Fossil's rolling hash of `blockSize` code units. */
class RollingHash {
  private a = 0
  private b = 0
  private next = 0
  private readonly window = new Uint16Array(blockSize)

  constructor(text: string, start: number) {
    for (let i = 0; i < blockSize; i++) {
      const unit = text.charCodeAt(start + i)
      this.window[i] = unit
      this.a = (this.a + unit) & 0xffff
      this.b = (this.b + this.a) & 0xffff
    }
  }

  get value(): number {
    return (this.a | (this.b << 16)) >>> 0
  }

  roll(unit: number): void {
    const old = this.window[this.next]!
    this.window[this.next] = unit
    this.next = (this.next + 1) & (blockSize - 1)
    this.a = (this.a - old + unit) & 0xffff
    this.b = (this.b - blockSize * old + this.a) & 0xffff
  }
}

const blockHash = (text: string, start: number): number => new RollingHash(text, start).value

/**
 * The delta that turns `source` into `target`: `target.length`, copy (`<n>@<offset>,`) and insert
 * (`<n>:<text>`) commands, then the target's checksum (`<sum>;`), numbers in Fossil's base 64.
 * Undefined when finding it would cost more than a bounded amount of work (send `target` whole).
 */
export const createDelta = (source: string, target: string): string | undefined => {
  let budget = workPerUnit * (source.length + target.length) + 4096
  const parts = [`${encodeInt(target.length)}\n`]
  const insert = (from: number, to: number): void => {
    parts.push(`${encodeInt(to - from)}:`, target.slice(from, to))
  }
  let base = 0
  if (source.length > blockSize) {
    // Every aligned block of the source, by hash; `collide` chains the blocks of one hash.
    const slots = Math.floor(source.length / blockSize)
    const landmark = new Int32Array(slots).fill(-1)
    const collide = new Int32Array(slots).fill(-1)
    for (let block = 0; block < slots; block++) {
      const slot = blockHash(source, block * blockSize) % slots
      collide[block] = landmark[slot]!
      landmark[slot] = block
    }
    let bestCount = 0
    let bestOffset = 0
    let bestLiteral = 0
    /** A copy of the source from `start` for the target at `base + i`: whether it will do. */
    const consider = (start: number, i: number): boolean => {
      let forward = 0
      while (
        start + forward < source.length &&
        base + i + forward < target.length &&
        source.charCodeAt(start + forward) === target.charCodeAt(base + i + forward)
      )
        forward++
      let backward = 0
      while (
        backward < start &&
        backward < i &&
        source.charCodeAt(start - backward - 1) === target.charCodeAt(base + i - backward - 1)
      )
        backward++
      budget -= forward + backward + 1
      const count = forward + backward
      const offset = start - backward
      const literal = i - backward
      // A copy pays for its command: shorter ones stay literal.
      const cost = digitCount(literal) + digitCount(count) + digitCount(offset) + 3
      if (count < cost || count <= bestCount) return false
      bestCount = count
      bestOffset = offset
      bestLiteral = literal
      return count >= goodEnough
    }
    // Where the last copy ended in the source: an edit in place continues there.
    let sourceEnd = 0
    while (base + blockSize < target.length) {
      const hash = new RollingHash(target, base)
      bestCount = 0
      for (let i = 0; ; i++) {
        let done = sourceEnd + i + blockSize <= source.length && consider(sourceEnd + i, i)
        let candidates = maxCandidates
        for (
          let block = landmark[hash.value % slots]!;
          !done && block >= 0 && candidates-- > 0;
          block = collide[block]!
        )
          done = consider(block * blockSize, i)
        if (budget < 0) return undefined
        if (bestCount > 0) {
          if (bestLiteral > 0) insert(base, base + bestLiteral)
          base += bestLiteral
          parts.push(`${encodeInt(bestCount)}@${encodeInt(bestOffset)},`)
          base += bestCount
          sourceEnd = bestOffset + bestCount
          break
        }
        if (base + i + blockSize >= target.length) {
          insert(base, target.length)
          base = target.length
          break
        }
        hash.roll(target.charCodeAt(base + i + blockSize))
      }
    }
  }
  if (base < target.length) insert(base, target.length)
  parts.push(`${encodeInt(deltaChecksum(target))};`)
  return parts.join('')
}
