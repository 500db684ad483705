// Metrics fed by what the hub reports as it works (`hub.observe`): engine publish latency and
// errors, method calls and their durations, and how long a message waited before it was written
// to the topic's connections. One observation per publish, call and per topic per turn: never one
// per connection.
import type { Registry } from 'prom-client'
import { Counter, Histogram } from 'prom-client'
import type { HubSource } from './sources.js'

/** The error's stable code (a FlumenError's `.code`), or INTERNAL. */
const codeOf = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z_]{1,32}$/.test(code) ? code : 'INTERNAL'
}

/** Registers the observed metrics and starts observing the hub; returns their names and the stop. */
export const observeHub = (
  registry: Registry,
  prefix: string,
  hub: HubSource,
  buckets: readonly number[],
): { names: string[]; stop: () => void } => {
  const registers = [registry]
  const publishDuration = new Histogram({
    name: `${prefix}engine_publish_duration_seconds`,
    help: 'From a publish handed to the engine to its answer (stored: the commit or the Redis round trip)',
    labelNames: ['kind'] as const,
    buckets: [...buckets],
    registers,
  })
  const publishErrors = new Counter({
    name: `${prefix}engine_publish_errors_total`,
    help: 'Publishes the engine refused or failed, by error code (UNAVAILABLE: Redis is down)',
    labelNames: ['code'] as const,
    registers,
  })
  const writeDelay = new Histogram({
    name: `${prefix}hub_write_delay_seconds`,
    help: 'From the engine handing a message to this node to its write to the topic’s connections',
    buckets: [...buckets],
    registers,
  })
  const writes = new Counter({
    name: `${prefix}hub_writes_total`,
    help: 'Writes of a topic’s messages of one turn to its connections (one batch each)',
    registers,
  })
  const calls = new Counter({
    name: `${prefix}rpc_calls_total`,
    help: 'Method calls that ran, by method and result (ok, or the error code)',
    labelNames: ['method', 'result'] as const,
    registers,
  })
  const callDuration = new Histogram({
    name: `${prefix}rpc_duration_seconds`,
    help: 'Method call durations (input check, handler, output check)',
    labelNames: ['method'] as const,
    buckets: [...buckets],
    registers,
  })
  const stop = hub.observe({
    onPublish: (event) => {
      publishDuration.observe({ kind: event.volatile ? 'volatile' : 'stored' }, event.durationMs / 1000)
      if (event.error !== undefined) publishErrors.inc({ code: codeOf(event.error) })
    },
    onCall: (event) => {
      calls.inc({ method: event.method, result: event.error === undefined ? 'ok' : codeOf(event.error) })
      callDuration.observe({ method: event.method }, event.durationMs / 1000)
    },
    onWrite: (event) => {
      writes.inc()
      writeDelay.observe(event.delayMs / 1000)
    },
  })
  return {
    names: [publishDuration, publishErrors, writeDelay, writes, calls, callDuration].map(
      (metric) => (metric as unknown as { name: string }).name,
    ),
    stop,
  }
}
