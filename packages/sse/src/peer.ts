import type { ServerResponse } from 'node:http'
import type { Peer, PreparedFrame, StreamPosition } from '@flumen/core'
import { createId, ExpiryTimer } from '@flumen/core'

/** Counters of one SSE route, for metrics. */
export interface SseStats {
  /** Streams open now. */
  readonly connections: number
  /** Writes to streams: events, batches of events (one write), heartbeat comments. */
  sent: number
  /** Volatile frames dropped for slow readers. */
  dropped: number
  /** Streams closed because their buffer went over `maxBufferedBytes`. */
  slowConsumers: number
}

/** What a peer needs of its route. */
export interface SseRouteState<User = unknown> {
  readonly maxBufferedBytes: number
  readonly stats: SseStats
  onPeerClosed(peer: SsePeer<User>): void
}

/** One event as `sendEvent` writes it. */
export interface SseEvent {
  /** The payload; line breaks become several `data:` lines. */
  data: string
  /** The event name (`event:`); without it the client's `message` handler gets it. */
  event?: string
  /** The event id (`id:`), which the browser sends back as `Last-Event-ID`. */
  id?: string
}

const lineBreaks = /\r\n|\r|\n/

/** Encodes an event; fields cannot carry line breaks, so they are removed from event and id. */
export const encodeEvent = (event: SseEvent): string => {
  let text = ''
  if (event.event !== undefined) text += `event: ${event.event.replace(/[\r\n]/g, '')}\n`
  if (event.id !== undefined) text += `id: ${event.id.replace(/[\r\n\0]/g, '')}\n`
  for (const line of event.data.split(lineBreaks)) text += `data: ${line}\n`
  return `${text}\n`
}

const encodeTopic = (topic: string): string =>
  // encodeURIComponent leaves '~' alone; it separates the fields here.
  encodeURIComponent(topic).replaceAll('~', '%7E')

/** The `id:` cursor: every topic's position, `topic~epoch~offset` joined by commas. */
export const encodeCursor = (positions: ReadonlyMap<string, StreamPosition>): string => {
  let cursor = ''
  for (const [topic, position] of positions) {
    cursor += `${cursor ? ',' : ''}${encodeTopic(topic)}~${position.epoch}~${position.offset}`
  }
  return cursor
}

/** Parses a `Last-Event-ID` cursor; malformed entries are ignored (they recover nothing). */
export const decodeCursor = (cursor: string | undefined): Map<string, StreamPosition> => {
  const positions = new Map<string, StreamPosition>()
  if (!cursor || cursor.length > 16_384) return positions
  for (const entry of cursor.split(',')) {
    const [topic, epoch, offset] = entry.split('~')
    const number = Number(offset)
    if (!topic || !epoch || !Number.isSafeInteger(number) || number < 0) continue
    try {
      positions.set(decodeURIComponent(topic), { epoch, offset: number })
    } catch {
      // a broken percent-encoding: skip the entry
    }
  }
  return positions
}

/**
 * The bytes of a prepared frame as an SSE `message` event, built once and shared by every stream.
 * A hub message starts with the `id:` line of a stream that carries only its topic, the common
 * case; a stream with several topics writes its own cursor and the bytes after that line.
 */
const sseWire = (frame: PreparedFrame): Buffer => {
  if (frame.wire.sse) return frame.wire.sse
  const data = typeof frame.data === 'string' ? frame.data : Buffer.from(frame.data).toString('base64')
  const position = frame.position
  const idLine = position ? `id: ${encodeTopic(position.topic)}~${position.epoch}~${position.offset}\n` : ''
  frame.wire.sse = Buffer.from(idLine + encodeEvent({ event: 'message', data }))
  return frame.wire.sse
}

/** One SSE stream: a Peer for the hub, and `sendEvent`/`comment` for route handlers. */
export class SsePeer<User = unknown> implements Peer<User> {
  readonly id: string = createId()
  readonly transport = 'sse' as const
  /** Topic positions of the hub messages sent so far: the `id:` of each message event. */
  readonly positions: Map<string, StreamPosition> = new Map()
  /** Writes made before the response head went out (the handler may still fail with an error). */
  private pending: (string | Buffer)[] | undefined = []
  private closeListeners: (() => void)[] = []
  private isClosed = false
  private expiry: ExpiryTimer | undefined

  constructor(
    readonly res: ServerResponse,
    readonly user: User,
    /** The `Last-Event-ID` the client sent when it reconnected. */
    readonly lastEventId: string | undefined,
    private readonly route: SseRouteState<User>,
  ) {}

  get bufferedAmount(): number {
    return this.res.writableLength
  }

  get closed(): boolean {
    return this.isClosed
  }

  get expiresAt(): number | undefined {
    return this.expiry?.expiresAt
  }

  /** At expiry the stream ends; the client reconnects with fresh credentials. */
  set expiresAt(at: number | undefined) {
    if (at === undefined && !this.expiry) return
    this.expiry ??= new ExpiryTimer(() => this.close())
    this.expiry.expiresAt = at
  }

  send(frame: PreparedFrame): boolean {
    if (this.isClosed) return false
    if (frame.parts) {
      // A batch of one topic's messages (it has a position) on a stream of that topic alone goes
      // out as one write: each part's shared bytes carry its own `id:` line already.
      const position = frame.position
      if (
        position !== undefined &&
        (this.positions.size === 0 || (this.positions.size === 1 && this.positions.has(position.topic)))
      ) {
        this.positions.set(position.topic, position)
        frame.wire.sse ??= Buffer.concat(frame.parts.map(sseWire))
        return this.write(frame.wire.sse, frame.volatile)
      }
      let sent = false
      for (const part of frame.parts) sent = this.send(part) || sent
      return sent
    }
    const wire = sseWire(frame)
    const position = frame.position
    if (!position) return this.write(wire, frame.volatile)
    this.positions.set(position.topic, position)
    if (this.positions.size === 1) return this.write(wire, frame.volatile)
    const id = `id: ${encodeCursor(this.positions)}\n`
    return this.write(id, frame.volatile, wire.subarray(wire.indexOf(10) + 1))
  }

  /** Writes one event; false when it was dropped or the stream is closed. */
  sendEvent(event: SseEvent): boolean {
    return !this.isClosed && this.write(encodeEvent(event), false)
  }

  /**
   * Writes `event: position` with the current cursor as its `id:` and every topic's position as its
   * data (`{"room:1":{"epoch":"…","offset":17}}`), once every topic of the stream has one. It is an
   * event with data so that every EventSource moves its Last-Event-ID on (some ignore events without
   * data); browsers dispatch it to `position` listeners only, never to `onmessage`.
   */
  sendPosition(): boolean {
    if (this.isClosed || this.positions.size === 0) return false
    return this.sendEvent({
      event: 'position',
      id: encodeCursor(this.positions),
      data: JSON.stringify(Object.fromEntries(this.positions)),
    })
  }

  /** A comment line (`: text`), ignored by clients; keeps proxies from timing out. */
  comment(text = ''): boolean {
    return !this.isClosed && this.write(`: ${text.replace(/[\r\n]/g, ' ')}\n\n`, true)
  }

  /** Ends the stream; the client's EventSource reconnects unless told otherwise. */
  close(): void {
    if (this.isClosed) return
    if (this.pending) this.markClosed()
    else this.res.end()
  }

  /** Runs `listener` once when the stream ends, whoever ends it. */
  onClose(listener: () => void): void {
    if (this.isClosed) listener()
    else this.closeListeners.push(listener)
  }

  /** Sends the head and what was written before it. Called by the route. */
  start(head: string): void {
    const pending = this.pending ?? []
    this.pending = undefined
    this.res.write(head)
    for (const chunk of pending) this.res.write(chunk)
  }

  /** Called by the route when the response closed. */
  markClosed(): void {
    if (this.isClosed) return
    this.isClosed = true
    this.pending = undefined
    this.expiry?.clear()
    this.route.onPeerClosed(this)
    for (const listener of this.closeListeners.splice(0)) listener()
  }

  private write(chunk: string | Buffer, volatile: boolean, second?: Buffer): boolean {
    const size = chunk.length + (second?.length ?? 0)
    if (this.pending) {
      this.pending.push(chunk)
      if (second) this.pending.push(second)
      this.route.stats.sent++
      return true
    }
    if (this.res.writableLength + size > this.route.maxBufferedBytes) {
      if (volatile) {
        this.route.stats.dropped++
        return false
      }
      this.route.stats.slowConsumers++
      this.res.destroy()
      return false
    }
    if (second) {
      this.res.cork()
      this.res.write(chunk)
      this.res.write(second)
      this.res.uncork()
    } else {
      this.res.write(chunk)
    }
    this.route.stats.sent++
    return true
  }
}
