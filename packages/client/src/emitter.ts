import { FlumenClientError } from './errors.js'

type Listener = (...args: never[]) => void

/** What a part of the client needs of the client's events: to report some of them. */
export interface EventSink<Events extends Record<keyof Events, Listener>> {
  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void
  reportHandlerError(err: unknown): void
}

/**
 * Typed listener sets. A listener that throws does not stop the others: its error is reported to
 * the `error` listeners as HANDLER_ERROR (and dropped when an `error` listener itself threw).
 */
export class Emitter<
  Events extends { error: (error: FlumenClientError) => void } & Record<keyof Events, Listener>,
> {
  private readonly listeners = new Map<keyof Events, Set<Listener>>()

  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    let set = this.listeners.get(event)
    if (!set) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(listener)
    return () => {
      set.delete(listener)
    }
  }

  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        ;(listener as (...values: unknown[]) => void)(...args)
      } catch (err) {
        if (event !== 'error') this.reportHandlerError(err)
      }
    }
  }

  /** Reports an error thrown by the app's code (a listener, a message handler). */
  reportHandlerError(err: unknown): void {
    this.emit(
      'error',
      ...([new FlumenClientError('HANDLER_ERROR', String(err), { cause: err })] as Parameters<
        Events['error']
      >),
    )
  }
}
