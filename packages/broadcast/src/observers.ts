// What a hub tells the observers of its work (metrics, traces): publishes, method calls and writes
// to peers. Nothing is measured while nobody observes; an observer that throws is logged, never
// allowed to break the publish or the write it observes.
import { performance } from 'node:perf_hooks'

/** A publish that reached the engine, or failed on the way. */
export interface PublishEvent {
  readonly topic: string
  /** Who published: a connection (protocol `publish`) or the server (`hub.publish`). */
  readonly source: 'client' | 'server'
  readonly volatile: boolean
  /** The stored message's offset (absent for volatile messages and failures). */
  readonly offset?: number
  /** From the engine call to its answer (for SQLite and Redis: the commit or the round trip). */
  readonly durationMs: number
  /** Why it failed (a FlumenError such as UNAVAILABLE, or what the engine threw). */
  readonly error?: unknown
}

/** A method call of a client that ran (a refused or unknown one is not observed). */
export interface CallEvent {
  readonly method: string
  readonly durationMs: number
  readonly error?: unknown
}

/** One turn's messages of a topic, written to the topic's live peers. */
export interface WriteEvent {
  readonly topic: string
  readonly messages: number
  /** Live peers of the topic at the write (some may have been skipped: their own publish, a full buffer). */
  readonly peers: number
  /** From the engine handing the first of these messages to this node to the end of the write. */
  readonly delayMs: number
}

/** Callbacks a hub calls as it works; register with `hub.observe(observer)`. Every one is optional. */
export interface HubObserver {
  onPublish?(event: PublishEvent): void
  onCall?(event: CallEvent): void
  onWrite?(event: WriteEvent): void
}

/** The hub's observers; `active` is checked before measuring anything. */
export class Observers {
  private readonly list = new Set<HubObserver>()

  constructor(private readonly logError: (err: unknown) => void) {}

  get active(): boolean {
    return this.list.size > 0
  }

  add(observer: HubObserver): () => void {
    if (typeof observer !== 'object' || observer === null)
      throw new Error('hub.observe: observer must be an object of callbacks')
    const entry = { ...observer }
    this.list.add(entry)
    return () => {
      this.list.delete(entry)
    }
  }

  publish(event: PublishEvent): void {
    for (const observer of this.list) this.notify(observer.onPublish, event)
  }

  call(event: CallEvent): void {
    for (const observer of this.list) this.notify(observer.onCall, event)
  }

  write(event: WriteEvent): void {
    for (const observer of this.list) this.notify(observer.onWrite, event)
  }

  /** Runs `work`, then tells the observers how long it took, and how it ended (`describe`). */
  async timed<T>(
    work: () => Promise<T>,
    describe: (durationMs: number, result: T | undefined, error?: unknown) => void,
  ): Promise<T> {
    if (!this.active) return work()
    const started = performance.now()
    try {
      const result = await work()
      describe(performance.now() - started, result)
      return result
    } catch (err) {
      describe(performance.now() - started, undefined, err)
      throw err
    }
  }

  private notify<E>(callback: ((event: E) => void) | undefined, event: E): void {
    if (!callback) return
    try {
      callback(event)
    } catch (err) {
      this.logError(err)
    }
  }
}
