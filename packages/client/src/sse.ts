import type { AnyContract, MessageOf, TopicOfPattern } from '@flumen/contract'
import { check } from '@flumen/contract'
import { DeltaBases } from './delta.js'
import { FlumenClientError } from './errors.js'

/** A hub message of a contract's topic, checked: narrow it by `pattern`. */
export type ContractMessage<C extends AnyContract> = {
  [P in keyof C['topics'] & string]: {
    readonly topic: TopicOfPattern<P>
    readonly pattern: P
    /** As the topic's message schema outputs it. */
    readonly data: MessageOf<C, TopicOfPattern<P>>
  } & (
    | { readonly volatile: false; readonly epoch: string; readonly offset: number }
    /** A volatile message: stored nowhere, no position. */
    | { readonly volatile: true; readonly epoch?: undefined; readonly offset?: undefined }
  )
}[keyof C['topics'] & string]

export interface StreamEvent<C extends AnyContract | undefined = undefined> {
  /** `message` unless the server named it. */
  event: string
  data: string
  /** The stream's last event id after this event. */
  id: string | undefined
  /** With a contract: the hub message this event carries (`{"type":"message"}`), checked. */
  message?: C extends AnyContract ? ContractMessage<C> : undefined
}

export interface EventStreamOptions<C extends AnyContract | undefined = undefined> {
  /**
   * The app's contract: hub messages (`hub.sse()`) of its topics are checked against their schema;
   * those that break it are not yielded but given to `onInvalid`. Valid ones carry `message`.
   * @default none
   */
  contract?: C
  /** @default console.error */
  onInvalid?: (error: FlumenClientError) => void
  /** Headers for every (re)connect; a function is called each time (fresh tokens). */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)
  /**
   * Ask `hub.sse()` for deltas (adds `delta=fossil` to the URL) and turn them back into full
   * messages: `data` is always the full `{"type":"message",…}`. A delta that does not apply makes
   * the stream reconnect from the event before it, whose successors come in full.
   * @default false
   */
  delta?: boolean
  /** Resume after this id (sent as `Last-Event-ID`). */
  lastEventId?: string
  /**
   * Reconnect after the stream ends or the network fails, with `Last-Event-ID`.
   * @default true
   */
  reconnect?: boolean
  /**
   * Delay before reconnecting, until the server sends `retry:`.
   * @default 2000
   */
  retryMs?: number
  signal?: AbortSignal
  /** @default globalThis.fetch */
  fetch?: typeof fetch
}

/** An event stream being read; iterate it, and close it when done. */
export interface EventStream<C extends AnyContract | undefined = undefined>
  extends AsyncIterable<StreamEvent<C>> {
  readonly lastEventId: string | undefined
  close(): void
}

/**
 * Reads a Server-Sent Events stream with fetch (Node 18+ and browsers): parses events per the
 * HTML spec, reconnects with `Last-Event-ID` after a drop, and stops on an HTTP error (which the
 * iteration throws as HTTP_ERROR with `status`) or a 204.
 */
export const openEventStream = <C extends AnyContract | undefined = undefined>(
  url: string,
  options: EventStreamOptions<C> = {},
): EventStream<C> => {
  const fetchImpl = options.fetch ?? globalThis.fetch
  if (typeof fetchImpl !== 'function') throw new Error('openEventStream: no fetch available')
  const reconnect = options.reconnect ?? true
  let retryMs = options.retryMs ?? 2000
  let lastEventId = options.lastEventId
  const controller = new AbortController()
  options.signal?.addEventListener('abort', () => controller.abort(), { once: true })
  let iterating = false
  const { contract } = options
  const deltaBases = options.delta === true ? new DeltaBases() : undefined
  const streamUrl = deltaBases ? `${url}${url.includes('?') ? '&' : '?'}delta=fossil` : url
  const onInvalid =
    options.onInvalid ?? ((error: FlumenClientError) => console.error('[flumen/client]', error))

  /** The event, with its checked hub message when there is a contract; undefined when it breaks it. */
  const checked = async (event: StreamEvent<C>): Promise<StreamEvent<C> | undefined> => {
    if (!contract || event.event !== 'message') return event
    let envelope: {
      type?: unknown
      topic?: unknown
      data?: unknown
      epoch?: unknown
      offset?: unknown
      volatile?: unknown
    }
    try {
      envelope = JSON.parse(event.data) as typeof envelope
    } catch {
      return event
    }
    if (envelope?.type !== 'message' || typeof envelope.topic !== 'string') return event
    const topic = envelope.topic
    const match = contract.match(topic)
    if (!match) return event
    const result = await check(match.spec.message, envelope.data)
    if (!result.ok) {
      onInvalid(
        new FlumenClientError(
          'INVALID_MESSAGE',
          `A message of ${topic} breaks the contract: ${result.message}`,
          {
            issues: result.issues,
            topic,
          },
        ),
      )
      return undefined
    }
    const message =
      envelope.volatile === true
        ? { topic, pattern: match.pattern, data: result.value, volatile: true }
        : {
            topic,
            pattern: match.pattern,
            data: result.value,
            volatile: false,
            epoch: String(envelope.epoch),
            offset: Number(envelope.offset),
          }
    return { ...event, message: message as StreamEvent<C>['message'] }
  }

  /**
   * With `delta`: the event with its delta applied (a full message recorded as the next base);
   * undefined when the delta does not apply.
   */
  const undelta = (event: StreamEvent<C>): StreamEvent<C> | undefined => {
    if (!deltaBases || event.event !== 'message') return event
    let envelope: {
      type?: unknown
      topic?: unknown
      data?: unknown
      delta?: unknown
      epoch?: unknown
      offset?: unknown
      volatile?: unknown
    }
    try {
      envelope = JSON.parse(event.data) as typeof envelope
    } catch {
      return event
    }
    // A volatile message is whole and not a base: the next delta follows the stored one before it.
    if (envelope?.type !== 'message' || typeof envelope.topic !== 'string' || envelope.volatile === true)
      return event
    const { topic } = envelope
    const epoch = String(envelope.epoch)
    const offset = Number(envelope.offset)
    if (typeof envelope.delta !== 'string') {
      deltaBases.record(topic, epoch, offset, envelope.data)
      return event
    }
    try {
      const text = deltaBases.apply(topic, epoch, offset, envelope.delta)
      const data = `{"type":"message","topic":${JSON.stringify(topic)},"data":${text},"epoch":${JSON.stringify(epoch)},"offset":${offset}}`
      return { ...event, data }
    } catch {
      return undefined
    }
  }

  async function* read(): AsyncGenerator<StreamEvent<C>> {
    const decoder = new TextDecoder()
    while (!controller.signal.aborted) {
      let response: Response
      try {
        const headers =
          typeof options.headers === 'function' ? await options.headers() : (options.headers ?? {})
        response = await fetchImpl(streamUrl, {
          headers: {
            accept: 'text/event-stream',
            'cache-control': 'no-cache',
            ...headers,
            ...(lastEventId !== undefined && { 'last-event-id': lastEventId }),
          },
          signal: controller.signal,
        })
      } catch (err) {
        if (controller.signal.aborted) return
        if (!reconnect) throw new FlumenClientError('CONNECTION_REFUSED', 'Could not connect', { cause: err })
        await wait(retryMs, controller.signal)
        continue
      }
      if (response.status === 204) return
      if (!response.ok || !response.body) {
        await response.body?.cancel().catch(() => {})
        throw new FlumenClientError('HTTP_ERROR', `The stream answered ${response.status}`, {
          status: response.status,
        })
      }
      let buffer = ''
      let data: string[] = []
      let event = ''
      // The id before the event being read: where to resume from when its delta does not apply.
      let resumeId = lastEventId
      let resync = false
      deltaBases?.clear() // a new stream starts every topic with a full message
      // A reader rather than `for await`: Safari's ReadableStream is not async-iterable.
      const reader = response.body.getReader()
      try {
        for (;;) {
          const { done, value: chunk } = await reader.read()
          if (done) break
          buffer += decoder.decode(chunk, { stream: true })
          let newline = buffer.search(/\r\n|\r|\n/)
          while (newline >= 0) {
            const line = buffer.slice(0, newline)
            buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1))
            newline = buffer.search(/\r\n|\r|\n/)
            if (line === '') {
              if (data.length > 0) {
                const whole = undelta({ event: event || 'message', data: data.join('\n'), id: lastEventId })
                if (!whole) {
                  lastEventId = resumeId
                  resync = true
                  break
                }
                const next = await checked(whole)
                if (next) yield next
              }
              resumeId = lastEventId
              data = []
              event = ''
              continue
            }
            if (line.startsWith(':')) continue
            const colon = line.indexOf(':')
            const field = colon < 0 ? line : line.slice(0, colon)
            const value = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1))
            if (field === 'data') data.push(value)
            else if (field === 'event') event = value
            else if (field === 'id' && !value.includes('\0')) lastEventId = value
            else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value)
          }
          if (resync) break
        }
      } catch {
        // the network dropped: reconnect below
      } finally {
        // Also reached when the consumer stops iterating: the response must not stay open.
        reader.cancel().catch(() => {})
      }
      if (controller.signal.aborted || (!reconnect && !resync)) return
      if (!resync) await wait(retryMs, controller.signal)
    }
  }

  const generator = read()
  return {
    get lastEventId() {
      return lastEventId
    },
    close() {
      controller.abort()
      if (!iterating) void generator.return(undefined)
    },
    [Symbol.asyncIterator]() {
      iterating = true
      return generator
    },
  }
}

const wait = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
