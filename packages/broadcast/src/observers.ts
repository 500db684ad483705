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

/** What the hub is about to run: a publish handed to the engine, or a client's method call. */
export type HubOperation =
  | {
      readonly kind: 'publish'
      readonly topic: string
      readonly source: PublishEvent['source']
      readonly volatile: boolean
    }
  | { readonly kind: 'call'; readonly method: string }

/** Callbacks a hub calls as it works; register with `hub.observe(observer)`. Every one is optional. */
export interface HubObserver {
  onPublish?(event: PublishEvent): void
  onCall?(event: CallEvent): void
  onWrite?(event: WriteEvent): void
  /**
   * Runs a publish or a call: the observer may run it inside a context of its own (a trace span made
   * active), which everything the operation causes then sees: `onPublish`/`onCall`, the method's
   * handler, and for an engine that delivers in the same turn (the memory engine) the `onWrite` of
   * the message's first write. It must call `run` once and return (or await) its promise.
   */
  around?<T>(operation: HubOperation, run: () => Promise<T>): Promise<T>
}

type WrappingObserver = HubObserver & Required<Pick<HubObserver, 'around'>>

/** The hub's observers; `active` is checked before measuring anything. */
export class Observers {
  // One entry per observe() call: the same observer registered twice is told twice, and each
  // registration's stop removes its own.
  private readonly list = new Set<{ readonly observer: HubObserver }>()
  /** The observers with `around`, the last registered first (the innermost): kept on add and stop. */
  private wrapping: WrappingObserver[] = []

  constructor(private readonly logError: (err: unknown) => void) {}

  get active(): boolean {
    return this.list.size > 0
  }

  add(observer: HubObserver): () => void {
    if (typeof observer !== 'object' || observer === null)
      throw new Error('hub.observe: observer must be an object of callbacks')
    const entry = { observer }
    this.list.add(entry)
    this.rewrap()
    return () => {
      this.list.delete(entry)
      this.rewrap()
    }
  }

  private rewrap(): void {
    this.wrapping = [...this.list]
      .map((entry) => entry.observer)
      .filter((observer): observer is WrappingObserver => observer.around !== undefined)
      .reverse()
  }

  publish(event: PublishEvent): void {
    for (const { observer } of this.list) this.notify(observer, observer.onPublish, event)
  }

  call(event: CallEvent): void {
    for (const { observer } of this.list) this.notify(observer, observer.onCall, event)
  }

  write(event: WriteEvent): void {
    for (const { observer } of this.list) this.notify(observer, observer.onWrite, event)
  }

  /**
   * Runs `operation`'s `work` inside every observer's `around` (the first registered outermost),
   * then tells the observers how long it took and how it ended (`describe`), still inside them.
   */
  timed<T>(
    operation: HubOperation,
    work: () => Promise<T>,
    describe: (durationMs: number, result: T | undefined, error?: unknown) => void,
  ): Promise<T> {
    if (!this.active) return work()
    let run = async (): Promise<T> => {
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
    for (const observer of this.wrapping) {
      const inner = run
      run = () => observer.around(operation, inner)
    }
    return run()
  }

  private notify<E>(observer: HubObserver, callback: ((event: E) => void) | undefined, event: E): void {
    if (!callback) return
    try {
      callback.call(observer, event)
    } catch (err) {
      this.logError(err)
    }
  }
}
