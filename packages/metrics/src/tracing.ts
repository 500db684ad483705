// OpenTelemetry spans for a Flumen app, through @opentelemetry/api only: whatever SDK the app
// registers (or none: then every call is a no-op) records them. A server span per request (WebSocket
// upgrades, SSE streams and uploads are requests too), a span per publish handed to the engine and
// per method call, made active while they run, and a span per write of a topic's messages to its
// connections, under the publish that caused it (on the memory engine, which delivers in the same turn).
import type { Attributes, Context, Span, TextMapGetter, Tracer } from '@opentelemetry/api'
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { MiddlewareHandler } from 'hono'
import { routePath } from 'hono/route'
import type { HubEvents, HubSource } from './sources.js'

export interface TracingOptions {
  /**
   * The tracer spans are made with.
   * @default trace.getTracer('@flumen/metrics') of the registered tracer provider
   */
  tracer?: Tracer
  /** The hub whose publishes, calls and writes become spans. */
  hub?: HubSource
}

export interface FlumenTracing {
  /**
   * Hono middleware: a server span per request, child of the request's `traceparent` (W3C, through
   * the registered propagator), active while the handler runs, so a `hub.publish` in a route is its
   * child. Named `METHOD /route/:pattern`; ends when the handler has answered (for a WebSocket, the
   * 101; for SSE, the response head; for an upload, once it is stored).
   */
  readonly middleware: MiddlewareHandler
  /** Stops observing the hub. */
  close(): void
}

const headerGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
}

const messaging = (operation: string, topic: string): Attributes => ({
  'messaging.system': 'flumen',
  'messaging.operation.name': operation,
  'messaging.operation.type': 'send',
  'messaging.destination.name': topic,
})

/** Ends `span` with the outcome of `work`: an exception recorded and the status set on failure. */
const endWith = async <T>(span: Span, work: () => Promise<T>): Promise<T> => {
  try {
    return await work()
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err))
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) })
    throw err
  } finally {
    span.end()
  }
}

/** The time `ms` milliseconds before now, as epoch milliseconds (sub-millisecond precise). */
const msAgo = (ms: number): number => performance.timeOrigin + performance.now() - ms

export const flumenTracing = (options: TracingOptions = {}): FlumenTracing => {
  const tracer = options.tracer ?? trace.getTracer('@flumen/metrics')
  if (typeof tracer?.startSpan !== 'function')
    throw new Error('flumenTracing: tracer must be an OpenTelemetry Tracer')
  const hub = options.hub
  if (hub !== undefined && typeof hub?.observe !== 'function')
    throw new Error('flumenTracing: hub must come from createHub() of @flumen/broadcast')

  const middleware: MiddlewareHandler = async (c, next) => {
    const parent: Context = propagation.extract(context.active(), c.req.raw.headers, headerGetter)
    const span = tracer.startSpan(
      c.req.method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': c.req.method, 'url.path': c.req.path },
      },
      parent,
    )
    try {
      await context.with(trace.setSpan(parent, span), next)
    } finally {
      const route = routePath(c)
      span.updateName(`${c.req.method} ${route}`)
      span.setAttribute('http.route', route)
      // A WebSocket route answers an accepted upgrade with an empty 200 (a Response cannot be a
      // 101); serve() then writes the 101 on the socket.
      const upgraded = c.res.status === 200 && c.req.header('upgrade')?.toLowerCase() === 'websocket'
      span.setAttribute('http.response.status_code', upgraded ? 101 : c.res.status)
      if (c.error) span.recordException(c.error)
      if (c.res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
      span.end()
    }
  }

  const observer: HubEvents = {
    around: (operation, run) =>
      operation.kind === 'publish'
        ? tracer.startActiveSpan(
            'publish',
            {
              kind: SpanKind.PRODUCER,
              attributes: {
                ...messaging('publish', operation.topic),
                'flumen.publish.source': operation.source,
                'flumen.publish.volatile': operation.volatile,
              },
            },
            (span) => endWith(span, run),
          )
        : tracer.startActiveSpan(
            `call ${operation.method}`,
            { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'flumen', 'rpc.method': operation.method } },
            (span) => endWith(span, run),
          ),
    // Runs inside the publish span (see `around`): the stored message's offset goes on it.
    onPublish: (event) => {
      if (event.offset !== undefined) trace.getActiveSpan()?.setAttribute('flumen.offset', event.offset)
    },
    onWrite: (event) => {
      tracer
        .startSpan('deliver', {
          kind: SpanKind.PRODUCER,
          startTime: msAgo(event.delayMs),
          attributes: {
            ...messaging('deliver', event.topic),
            'messaging.batch.message_count': event.messages,
            'flumen.connections': event.peers,
          },
        })
        .end()
    },
  }
  const stop = hub?.observe(observer)
  return { middleware, close: () => stop?.() }
}
