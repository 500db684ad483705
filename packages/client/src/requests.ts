// Requests of one client over whichever connection is open: each gets an `id` and waits for the
// answer with that id (`ack`, `result` or `error`), or its timeout. Publishes also wait for a
// connection in the outbox, in order, and go out again with the same idempotency key when the
// connection dropped before their answer, so the server stores each once.
import { FlumenClientError } from './errors.js'
import type { ServerMessage } from './protocol.js'
import { serverError } from './protocol.js'
import type { RawSocket } from './socket.js'

export type Answer = ServerMessage

interface Pending {
  resolve(answer: Answer): void
  reject(err: FlumenClientError): void
  timer: ReturnType<typeof setTimeout>
  /** Set on a publish: where it goes back when the connection drops before its answer. */
  readonly retry: Queued | undefined
}

interface Queued {
  /** Order of the publish calls: requeued publishes go out again before newer ones. */
  readonly seq: number
  readonly message: Record<string, unknown>
  readonly timeoutMs: number
  resolve(answer: Answer): void
  reject(err: FlumenClientError): void
}

export class Requests {
  private readonly pending = new Map<number, Pending>()
  private readonly outbox: Queued[] = []
  private socket: RawSocket | undefined
  private nextId = 1
  private nextSeq = 1

  constructor(
    private readonly defaultTimeoutMs: number,
    private readonly maxQueued: number,
  ) {}

  /** Sends a request on the open connection and waits for its answer. */
  request(message: Record<string, unknown>, timeoutMs: number = this.defaultTimeoutMs): Promise<Answer> {
    return new Promise((resolve, reject) => this.send(message, timeoutMs, resolve, reject, undefined))
  }

  /**
   * Publishes now when connected (and nothing waits before it), else when the next connection opens;
   * resent after a drop until answered. Rejects with OFFLINE_QUEUE_FULL past `maxQueued` waiting.
   */
  publish(message: Record<string, unknown>, timeoutMs: number = this.defaultTimeoutMs): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const queued: Queued = { seq: this.nextSeq++, message, timeoutMs, resolve, reject }
      if (this.socket?.isOpen && this.outbox.length === 0) {
        this.send(message, timeoutMs, resolve, reject, queued)
        return
      }
      if (this.outbox.length >= this.maxQueued) {
        reject(
          new FlumenClientError(
            'OFFLINE_QUEUE_FULL',
            `More than ${this.maxQueued} publishes waiting to be sent`,
          ),
        )
        return
      }
      this.outbox.push(queued)
    })
  }

  /**
   * Sends a message that waits for no answer (a volatile publish) on the open connection: false when
   * there is none (it is dropped, not queued: it would be stale by the next connection).
   */
  sendNow(message: Record<string, unknown>): boolean {
    if (!this.socket?.isOpen) return false
    this.socket.send(JSON.stringify(message))
    return true
  }

  /** A connection opened: requests go out on it from now on. */
  connected(socket: RawSocket): void {
    this.socket = socket
  }

  /** Sends the publishes that waited for a connection, oldest first. */
  flushOutbox(): void {
    for (const queued of this.outbox.splice(0))
      this.send(queued.message, queued.timeoutMs, queued.resolve, queued.reject, queued)
  }

  /**
   * The connection dropped: requests in flight fail with `err`, except publishes, which wait for the
   * next connection again (ahead of those queued after them).
   */
  disconnected(err: FlumenClientError): void {
    this.socket = undefined
    const requeued: Queued[] = []
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer)
      if (entry.retry) requeued.push(entry.retry)
      else entry.reject(err)
    }
    this.pending.clear()
    this.outbox.unshift(...requeued)
    this.outbox.sort((a, b) => a.seq - b.seq)
  }

  /** The client closed: everything waiting rejects with `err`. */
  close(err: FlumenClientError): void {
    this.disconnected(err)
    for (const queued of this.outbox.splice(0)) queued.reject(err)
  }

  /** An `ack`, `result` or `error` from the server; false when it answers no request of ours. */
  answer(message: ServerMessage): boolean {
    const id = message.id
    const entry = typeof id === 'number' ? this.pending.get(id) : undefined
    if (!entry) return false
    this.pending.delete(id as number)
    clearTimeout(entry.timer)
    if (message.type === 'error') entry.reject(serverError(message))
    else entry.resolve(message)
    return true
  }

  private send(
    message: Record<string, unknown>,
    timeoutMs: number,
    resolve: (answer: Answer) => void,
    reject: (err: FlumenClientError) => void,
    retry: Queued | undefined,
  ): void {
    const socket = this.socket
    if (!socket?.isOpen) {
      reject(new FlumenClientError('DISCONNECTED', 'Not connected'))
      return
    }
    const id = this.nextId++
    const timer = setTimeout(() => {
      this.pending.delete(id)
      reject(new FlumenClientError('TIMEOUT', `No answer to ${String(message.type)} within ${timeoutMs} ms`))
    }, timeoutMs)
    this.pending.set(id, { resolve, reject, timer, retry })
    socket.send(JSON.stringify({ ...message, id }))
  }
}
