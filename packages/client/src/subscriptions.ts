// The topics a client follows: one subscribe per topic whatever the number of handlers, asked for
// again on every connection from where it stands (the server sends what was missed, or says the
// gap is lost: a `reset`), duplicates of a recovery dropped, presence kept per topic.
import type { ContractChecks } from './contract-checks.js'
import { DeltaBases } from './delta.js'
import type { EventSink } from './emitter.js'
import { FlumenClientError } from './errors.js'
import type { ServerMessage, StreamPosition } from './protocol.js'
import { covers } from './protocol.js'
import type { Requests } from './requests.js'

/** A stored message: where it stands in the topic. */
export interface StoredMessageMeta {
  topic: string
  epoch: string
  offset: number
  volatile: false
}

/** A volatile message: stored nowhere, so it has no position. */
export interface VolatileMessageMeta {
  topic: string
  volatile: true
  epoch?: undefined
  offset?: undefined
}

/** What a handler learns besides the data; narrow by `volatile`. */
export type MessageMeta = StoredMessageMeta | VolatileMessageMeta

export interface SubscribeOptions {
  /** Start from a known position (e.g. saved across page loads) instead of now. */
  since?: { epoch: string; offset: number }
  /**
   * Ask for the topic's messages as deltas against the message before (when the hub allows it):
   * for topics whose messages are versions of one document. Handlers get full data either way; a
   * delta that does not apply makes the client resubscribe from where it stands, in full. The
   * first subscriber of a topic decides.
   * @default false
   */
  delta?: boolean
}

export interface Subscription {
  readonly topic: string
  /** Settles with the first subscribe answer (rejects with the server's code, e.g. FORBIDDEN). */
  readonly ready: Promise<{ recovered: boolean }>
  /** Where this client stands in the topic (what it has received up to). */
  readonly position: { epoch: string; offset: number } | undefined
  unsubscribe(): Promise<void>
}

/** Events the subscriptions report through the client. */
export interface SubscriptionEvents {
  reset: (event: { topic: string; epoch: string; offset: number }) => void
  presence: (event: { topic: string; members: unknown[] }) => void
  error: (error: FlumenClientError) => void
}

type Handler = (data: unknown, meta: MessageMeta) => void

interface Topic {
  readonly handlers: Set<Handler>
  position: StreamPosition | undefined
  members: Map<string, unknown>
  /** True once the server acknowledged a subscribe on the current connection. */
  live: boolean
  /** Settles with the first subscribe answer; every subscriber of the topic shares it. */
  readonly ready: Promise<{ recovered: boolean }>
  /** Set until `ready` settles. */
  settle: { resolve(value: { recovered: boolean }): void; reject(err: FlumenClientError): void } | undefined
  /** Subscribes refused for a passing reason (UNAVAILABLE…) in a row: the backoff of the next try. */
  failures: number
  /** Deltas asked for; `deltas` is true while the server sends them. */
  readonly askDelta: boolean
  deltas: boolean
  /** A delta did not apply: messages are dropped until the topic is subscribed again. */
  resyncing: boolean
}

/** Refusals that say the topic itself is not to be had: the subscription ends. Others are retried. */
const permanentRefusals = new Set(['FORBIDDEN', 'UNAUTHORIZED', 'BAD_REQUEST', 'NOT_FOUND'])

const memberKey = (member: unknown): string =>
  typeof member === 'object' && member !== null && 'id' in member ? String(member.id) : JSON.stringify(member)

export interface SubscriptionsContext {
  readonly requests: Requests
  /** What messages and members must be to reach the app (the contract's schemas). */
  readonly checks: ContractChecks
  readonly events: EventSink<SubscriptionEvents>
  readonly retryDelayMs: (attempt: number) => number
  /** Runs `run` after `ms` unless the connection ends first. */
  later(ms: number, run: () => void): void
  /** Whether a connection is open now. */
  isOpen(): boolean
  /** Ends the current connection (a fresh one resubscribes). */
  dropConnection(reason: string): void
}

export class Subscriptions {
  private readonly topics = new Map<string, Topic>()
  private readonly deltaBases = new DeltaBases()
  /** Connections so far: a resync started on one connection does not subscribe on the next. */
  private connections = 0
  private closed = false

  constructor(private readonly context: SubscriptionsContext) {}

  add(topic: string, handler: Handler, options: SubscribeOptions): Subscription {
    let entry = this.topics.get(topic)
    if (entry) entry.handlers.add(handler)
    else {
      let settle: Topic['settle']
      const ready = new Promise<{ recovered: boolean }>((resolve, reject) => {
        settle = { resolve, reject }
      })
      ready.catch(() => {}) // also reported through the caller's await, or 'error'
      const created: Topic = {
        handlers: new Set([handler]),
        position: options.since,
        members: new Map(),
        live: false,
        ready,
        settle,
        failures: 0,
        askDelta: options.delta === true,
        deltas: false,
        resyncing: false,
      }
      entry = created
      this.topics.set(topic, created)
      if (this.closed) this.settleClosed(created)
      else if (this.context.isOpen()) this.send(topic, created)
    }
    const current = entry
    return {
      topic,
      ready: current.ready,
      get position() {
        return current.position && { ...current.position }
      },
      unsubscribe: async () => {
        current.handlers.delete(handler)
        if (current.handlers.size > 0 || this.topics.get(topic) !== current) return
        this.topics.delete(topic)
        this.deltaBases.forget(topic)
        if (this.context.isOpen() && current.live)
          await this.context.requests.request({ type: 'unsubscribe', topic }).catch(() => {})
      },
    }
  }

  /** A connection opened: every topic is asked for again, from where it stands. */
  resubscribe(): void {
    this.connections++
    this.deltaBases.clear() // a new connection starts every delta topic with a full message
    for (const entry of this.topics.values()) entry.live = false
    for (const [topic, entry] of this.topics) this.send(topic, entry)
  }

  /** The client closed: subscriptions still waiting for their first answer reject with CLOSED. */
  close(): void {
    this.closed = true
    for (const entry of this.topics.values()) this.settleClosed(entry)
  }

  members(topic: string): unknown[] {
    return [...(this.topics.get(topic)?.members.values() ?? [])]
  }

  /** A `message` from the server. */
  onMessage(message: ServerMessage): void {
    const topic = String(message.topic)
    const entry = this.topics.get(topic)
    if (!entry || entry.resyncing) return
    // Volatile: no position to check or move, no delta base.
    if (message.volatile === true) {
      if (entry.live) this.dispatch(topic, entry, message.data, { topic, volatile: true })
      return
    }
    const at = { epoch: String(message.epoch), offset: Number(message.offset) }
    const position = entry.position
    // Already seen (a recovery overlapping live delivery): drop.
    if (position && covers(position, at)) return
    let data = message.data
    if (typeof message.delta === 'string') {
      try {
        data = JSON.parse(this.deltaBases.apply(topic, at.epoch, at.offset, message.delta))
      } catch {
        this.resync(topic, entry)
        return
      }
    } else if (entry.deltas) this.deltaBases.record(topic, at.epoch, at.offset, data)
    // Another epoch while live: the server's history is not the one this client followed (it was
    // lost); what came between cannot be known, so the app resyncs.
    if (position && position.epoch !== at.epoch)
      this.context.events.emit('reset', { topic, epoch: at.epoch, offset: at.offset - 1 })
    entry.position = at
    this.dispatch(topic, entry, data, { topic, ...at, volatile: false })
  }

  /** Gives checked data to the topic's handlers. */
  private dispatch(topic: string, entry: Topic, data: unknown, meta: MessageMeta): void {
    this.context.checks.message(topic, data, (data) => {
      for (const handler of entry.handlers) {
        try {
          handler(data, meta)
        } catch (err) {
          this.context.events.reportHandlerError(err)
        }
      }
    })
  }

  /** A `presence` message from the server: the member list, a join or a leave. */
  onPresence(message: ServerMessage): void {
    const topic = String(message.topic)
    const entry = this.topics.get(topic)
    if (!entry) return
    const { checks } = this.context
    if (Array.isArray(message.members))
      entry.members = new Map(checks.members(topic, message.members).map((m) => [memberKey(m), m]))
    if (Array.isArray(message.join))
      for (const member of checks.members(topic, message.join)) entry.members.set(memberKey(member), member)
    // A leave only needs the member's key: it is not checked.
    if (Array.isArray(message.leave))
      for (const member of message.leave) entry.members.delete(memberKey(member))
    this.context.events.emit('presence', { topic, members: [...entry.members.values()] })
  }

  /**
   * A delta that did not apply (a message this client does not have, or a corrupt one): the topic
   * is subscribed again from the last message that reached the handlers, whose successors come in
   * full. Meanwhile its messages are dropped (the resubscribe brings them again).
   */
  private resync(topic: string, entry: Topic): void {
    entry.resyncing = true
    entry.live = false
    this.deltaBases.forget(topic)
    const connection = this.connections
    void this.context.requests
      .request({ type: 'unsubscribe', topic })
      .catch(() => {})
      .then(() => {
        if (this.topics.get(topic) === entry && connection === this.connections && this.context.isOpen())
          this.send(topic, entry)
      })
  }

  private settleClosed(entry: Topic): void {
    entry.settle?.reject(new FlumenClientError('CLOSED', 'The client closed'))
    entry.settle = undefined
  }

  private send(topic: string, entry: Topic): void {
    const since = entry.position
    const { requests, events } = this.context
    const delta = entry.askDelta ? { delta: 'fossil' } : {}
    requests.request({ type: 'subscribe', topic, ...(since && { since }), ...delta }).then(
      (ack) => {
        const position = { epoch: String(ack.epoch), offset: Number(ack.offset) }
        entry.deltas = ack.delta === 'fossil'
        entry.resyncing = false
        // Recovered: the missed messages follow and move the position; otherwise start from now.
        if (!since || ack.recovered !== true) entry.position = position
        entry.live = true
        entry.failures = 0
        if (since && ack.recovered !== true) events.emit('reset', { topic, ...position })
        entry.settle?.resolve({ recovered: !since || ack.recovered === true })
        entry.settle = undefined
      },
      (err: FlumenClientError) => {
        if (err.code === 'DISCONNECTED' || err.code === 'CLOSED') return // asked again on reconnect
        if (err.code === 'TIMEOUT' && err.message.startsWith('No answer')) {
          this.context.dropConnection('Subscribe timed out') // a fresh connection asks again
          return
        }
        // A passing refusal (the server's engine is down, a rate limit): the topic is still wanted,
        // so it is asked for again with backoff on this connection (or after the next reconnect).
        if (!permanentRefusals.has(err.code)) {
          const attempt = entry.failures++
          this.context.later(this.context.retryDelayMs(attempt), () => {
            if (this.topics.get(topic) === entry && !entry.live && this.context.isOpen())
              this.send(topic, entry)
          })
          return
        }
        this.topics.delete(topic)
        // Refused at first: the subscribers' `ready` says so; refused on a resubscribe: 'error'.
        if (entry.settle) entry.settle.reject(err)
        else events.emit('error', err)
        entry.settle = undefined
      },
    )
  }
}
