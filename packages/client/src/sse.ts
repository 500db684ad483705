import { FlumenClientError } from './errors.js'

export interface StreamEvent {
  /** `message` unless the server named it. */
  event: string
  data: string
  /** The stream's last event id after this event. */
  id: string | undefined
}

export interface EventStreamOptions {
  /** Headers for every (re)connect; a function is called each time (fresh tokens). */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)
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
export interface EventStream extends AsyncIterable<StreamEvent> {
  readonly lastEventId: string | undefined
  close(): void
}

/**
 * Reads a Server-Sent Events stream with fetch (Node 18+ and browsers): parses events per the
 * HTML spec, reconnects with `Last-Event-ID` after a drop, and stops on an HTTP error (which the
 * iteration throws as HTTP_ERROR with `status`) or a 204.
 */
export const openEventStream = (url: string, options: EventStreamOptions = {}): EventStream => {
  const fetchImpl = options.fetch ?? globalThis.fetch
  if (typeof fetchImpl !== 'function') throw new Error('openEventStream: no fetch available')
  const reconnect = options.reconnect ?? true
  let retryMs = options.retryMs ?? 2000
  let lastEventId = options.lastEventId
  const controller = new AbortController()
  options.signal?.addEventListener('abort', () => controller.abort(), { once: true })
  let iterating = false

  async function* read(): AsyncGenerator<StreamEvent> {
    const decoder = new TextDecoder()
    while (!controller.signal.aborted) {
      let response: Response
      try {
        const headers =
          typeof options.headers === 'function' ? await options.headers() : (options.headers ?? {})
        response = await fetchImpl(url, {
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
              if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id: lastEventId }
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
        }
      } catch {
        // the network dropped: reconnect below
      } finally {
        // Also reached when the consumer stops iterating: the response must not stay open.
        reader.cancel().catch(() => {})
      }
      if (controller.signal.aborted || !reconnect) return
      await wait(retryMs, controller.signal)
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
