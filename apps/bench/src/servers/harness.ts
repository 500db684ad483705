// Runs inside every benchmarked server process: reports the port to the orchestrator over IPC
// and answers its requests for a garbage collection and memory figures.
import type { Server } from 'node:http'

export interface ServerMessage {
  type: 'ready' | 'memory'
  port?: number
  rss?: number
  heapUsed?: number
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
  process.on('message', (message: { type: string }) => {
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
