import { readdir } from 'node:fs/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** What a leak check watches besides fds, timers, sockets and process listeners. */
export interface LeakCheckOptions {
  /** Directories (walked recursively) that must hold the same files afterwards: temp and storage dirs. */
  dirs?: readonly string[]
  /**
   * HTTP servers under test: their idle keep-alive connections are closed before each look, so a
   * client's connection pool (fetch keeps sockets for seconds) is not taken for a leak.
   */
  servers?: readonly { closeIdleConnections(): void }[]
  /** Objects whose listener counts must come back (a server, a hub's engine emitter…). */
  emitters?: readonly { listenerCount(event: string | symbol): number; eventNames(): (string | symbol)[] }[]
  /**
   * Heap growth allowed after a full GC, in bytes.
   * @default 16 MiB
   */
  heapSlackBytes?: number
  /**
   * How long resources may take to be released (sockets close asynchronously).
   * @default 3_000
   */
  settleMs?: number
}

export interface LeakSnapshot {
  fds: number
  resources: Record<string, number>
  processListeners: Record<string, number>
  emitterListeners: Record<string, number>[]
  dirs: Record<string, string[]>
  heapUsed: number
}

export interface LeakCheck {
  /** Resolves once everything is back to the baseline; rejects naming what is not. */
  assertClean(): Promise<void>
  readonly before: LeakSnapshot
}

let collect: (() => void) | undefined
const gc = (): void => {
  if (!collect) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  collect()
}

const count = (names: readonly string[]): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1
  return counts
}

const listenersOf = (emitter: NonNullable<LeakCheckOptions['emitters']>[number]): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const name of emitter.eventNames()) counts[String(name)] = emitter.listenerCount(name)
  return counts
}

const snapshot = async (options: LeakCheckOptions): Promise<LeakSnapshot> => {
  gc()
  const dirs: Record<string, string[]> = {}
  for (const dir of options.dirs ?? []) dirs[dir] = await listTree(dir)
  return {
    fds: (await readdir('/proc/self/fd')).length,
    resources: count(process.getActiveResourcesInfo()),
    processListeners: listenersOf(process),
    emitterListeners: (options.emitters ?? []).map(listenersOf),
    dirs,
    heapUsed: process.memoryUsage().heapUsed,
  }
}

const listTree = async (dir: string, prefix = ''): Promise<string[]> => {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return []
  }
  const names: string[] = []
  for (const entry of entries) {
    const name = `${prefix}${entry.name}`
    // Files only: a storage creating its folders lazily is not a leak.
    if (entry.isDirectory()) names.push(...(await listTree(`${dir}/${entry.name}`, `${name}/`)))
    else names.push(name)
  }
  return names.sort()
}

/** Every kind of count that grew, as readable lines. */
const growth = (before: LeakSnapshot, after: LeakSnapshot, heapSlackBytes: number): string[] => {
  const problems: string[] = []
  if (after.fds > before.fds) problems.push(`open fds ${before.fds} → ${after.fds}`)
  for (const [name, n] of Object.entries(after.resources))
    if (n > (before.resources[name] ?? 0)) problems.push(`${name} ${before.resources[name] ?? 0} → ${n}`)
  for (const [name, n] of Object.entries(after.processListeners))
    if (n > (before.processListeners[name] ?? 0))
      problems.push(`process '${name}' listeners ${before.processListeners[name] ?? 0} → ${n}`)
  after.emitterListeners.forEach((counts, i) => {
    for (const [name, n] of Object.entries(counts))
      if (n > (before.emitterListeners[i]?.[name] ?? 0))
        problems.push(`emitter ${i} '${name}' listeners ${before.emitterListeners[i]?.[name] ?? 0} → ${n}`)
  })
  for (const [dir, names] of Object.entries(after.dirs)) {
    const extra = names.filter((name) => !before.dirs[dir]?.includes(name))
    if (extra.length > 0) problems.push(`left in ${dir}: ${extra.slice(0, 5).join(', ')}`)
  }
  if (after.heapUsed - before.heapUsed > heapSlackBytes)
    problems.push(
      `heap ${(before.heapUsed / 2 ** 20).toFixed(1)} → ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB`,
    )
  return problems
}

/**
 * Takes a baseline now; `assertClean()` after the bad input waits until open fds, active handles
 * (sockets, timers), process and emitter listeners, directory entries and the heap after GC are
 * back to it, and fails naming what is not. Take it once the server under test is started.
 */
export const leakCheck = async (options: LeakCheckOptions = {}): Promise<LeakCheck> => {
  const before = await snapshot(options)
  const heapSlackBytes = options.heapSlackBytes ?? 16 * 2 ** 20
  const settleMs = options.settleMs ?? 3_000
  return {
    before,
    async assertClean() {
      const deadline = Date.now() + settleMs
      for (;;) {
        for (const server of options.servers ?? []) server.closeIdleConnections()
        const problems = growth(before, await snapshot(options), heapSlackBytes)
        if (problems.length === 0) return
        if (Date.now() > deadline) throw new Error(`leak check: ${problems.join('; ')}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
  }
}
