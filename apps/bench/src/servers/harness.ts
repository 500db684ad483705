// Runs inside every benchmarked server process: reports the port to the orchestrator over IPC
// and answers its requests for a garbage collection and memory figures, and for the event-loop
// delay since the last request (how long the loop was blocked: what other requests wait).
import type { Server } from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'

export interface ServerMessage {
  type: 'ready' | 'memory' | 'loop-delay'
  port?: number
  rss?: number
  heapUsed?: number
  /** Event-loop delay since the previous `loop-delay` request, in ms. */
  maxMs?: number
  p99Ms?: number
}

const send = (message: ServerMessage): void => {
  process.send?.(message)
}

const collect = async (): Promise<void> => {
  const gc = (globalThis as { gc?: () => void }).gc
  // Several rounds with pauses, so that finalizers and weak references settle first.
  for (let i = 0; i < 3; i++) {
    gc?.()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Announces the port of a listening server and serves the orchestrator's requests. */
export const announce = (server: Server | { port: number }): void => {
  const port = 'port' in server ? server.port : (server.address() as { port: number }).port
  const loopDelay = monitorEventLoopDelay({ resolution: 1 })
  loopDelay.enable()
  process.on('message', (message: { type: string }) => {
    if (message.type === 'loop-delay') {
      send({ type: 'loop-delay', maxMs: loopDelay.max / 1e6, p99Ms: loopDelay.percentile(99) / 1e6 })
      loopDelay.reset()
    }
    if (message.type === 'memory') {
      void collect().then(() => {
        const usage = process.memoryUsage()
        send({ type: 'memory', rss: usage.rss, heapUsed: usage.heapUsed })
      })
    }
  })
  process.on('disconnect', () => process.exit(0))
  // A clean exit on SIGINT, so that --cpu-prof gets to write its profile.
  process.on('SIGINT', () => process.exit(0))
  send({ type: 'ready', port })
}

/** The implementation this process should run (first CLI argument). */
export const implementation = (choices: readonly string[]): string => {
  const impl = process.argv[2] ?? ''
  if (!choices.includes(impl))
    throw new Error(`unknown implementation "${impl}"; one of ${choices.join(', ')}`)
  return impl
}
