// Messages between the orchestrator and a load generator process.
export interface LoadResult {
  /** Operations (requests, messages, deliveries, bytes) counted in the measuring window. */
  ops: number
  durationMs: number
  p50?: number
  p99?: number
  /** Figures specific to the scenario (errors, MB/s, memory …). */
  extra?: Record<string, number>
}

export type LoadMessage =
  | { type: 'measure-start' }
  | { type: 'measure-end' }
  | { type: 'checkpoint'; name: string }
  | { type: 'result'; result: LoadResult }

/** Runs a load generator: reads its config from the orchestrator, reports back, exits. */
export const runLoad = <Config>(run: (config: Config) => Promise<LoadResult>): void => {
  process.once('message', (config: Config) => {
    run(config).then(
      (result) => {
        process.send?.({ type: 'result', result } satisfies LoadMessage, () => process.exit(0))
      },
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
  })
}

export const notify = (message: LoadMessage): void => {
  process.send?.(message)
}

/** Asks the orchestrator to act (e.g. read server memory) and waits until it says go on. */
export const checkpoint = (name: string): Promise<void> =>
  new Promise((resolve) => {
    process.once('message', () => resolve())
    notify({ type: 'checkpoint', name })
  })

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Loopback source addresses to spread connections over, so ephemeral ports never run out. */
export const localAddress = (index: number): string => `127.0.0.${2 + (index % 16)}`

/**
 * The load generator's own CPU use over a window, in percent of one core. Near 100 means the
 * generator, not the server, may be what limits the numbers.
 */
export const loadCpuPercent = (since: NodeJS.CpuUsage, durationMs: number): number => {
  const used = process.cpuUsage(since)
  return ((used.user + used.system) / 1000 / durationMs) * 100
}

/**
 * Warms up, then measures for `durationMs`: `setMeasuring` switches counting on and off, and the
 * orchestrator is told when the window opens and closes (it reads the server's CPU then).
 */
export const measureWindow = async (
  timing: { warmupMs: number; durationMs: number },
  setMeasuring: (on: boolean) => void,
): Promise<{ durationMs: number; loadCpu: number }> => {
  await sleep(timing.warmupMs)
  setMeasuring(true)
  notify({ type: 'measure-start' })
  const started = performance.now()
  const cpuAtStart = process.cpuUsage()
  await sleep(timing.durationMs)
  setMeasuring(false)
  notify({ type: 'measure-end' })
  const durationMs = performance.now() - started
  return { durationMs, loadCpu: loadCpuPercent(cpuAtStart, durationMs) }
}

/**
 * Bookkeeping of a fan-out: when each publish went out and how many deliveries it still awaits.
 * `delivered` records the latency and says whether that publish reached everyone.
 */
export class FanoutTracker {
  private readonly sentAt = new Map<number, number>()
  private readonly remaining = new Map<number, number>()
  measuring = false
  deliveries = 0

  constructor(
    private readonly histogram: { record(ms: number): void },
    private readonly recipients: number,
  ) {}

  sent(id: number): void {
    this.sentAt.set(id, performance.now())
    this.remaining.set(id, this.recipients)
  }

  /** True when this was the last delivery of publish `id`. */
  delivered(id: number): boolean {
    const start = this.sentAt.get(id)
    if (start === undefined) return false
    if (this.measuring) {
      this.histogram.record(performance.now() - start)
      this.deliveries++
    }
    const left = this.remaining.get(id)! - 1
    if (left > 0) {
      this.remaining.set(id, left)
      return false
    }
    this.remaining.delete(id)
    this.sentAt.delete(id)
    return true
  }
}
