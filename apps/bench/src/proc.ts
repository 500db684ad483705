// Child processes of a benchmark run: servers and load generators, and what /proc says of them.

import type { ChildProcess } from 'node:child_process'
import { execFileSync, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { LoadMessage, LoadResult } from './load/protocol.js'
import type { ServerMessage } from './servers/harness.js'

const clockTicksPerSecond = 100 // USER_HZ on Linux

// Servers run on CPU 0 and load generators on CPU 1, so the scheduler does not move them onto
// each other's core between runs (the largest source of run-to-run noise on 2 cores).
const canPin =
  availableParallelism() >= 2 &&
  (() => {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  })()

const pin = (pid: number | undefined, cpu: number): void => {
  if (canPin && pid !== undefined)
    execFileSync('taskset', ['-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
}
const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

export interface RunningServer {
  child: ChildProcess
  port: number
  pid: number
  /** Forces garbage collection in the server and reads its memory. */
  memory(): Promise<{ rss: number; heapUsed: number }>
  /** The server's event-loop delay (max, p99) since the previous call. */
  loopDelay(): Promise<{ maxMs: number; p99Ms: number }>
  stop(): Promise<void>
}

export interface ServerLaunch {
  cpuProfileDir?: string
}

export const startServer = (file: string, impl: string, launch: ServerLaunch = {}): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const execArgv = ['--import', 'tsx', '--expose-gc']
    if (launch.cpuProfileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${launch.cpuProfileDir}`)
    const child = fork(here(`./servers/${file}.ts`), [impl], {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const timer = setTimeout(() => reject(new Error(`${file} ${impl} did not start`)), 30_000)
    child.once('exit', (code) => reject(new Error(`${file} ${impl} exited with ${code} before it was ready`)))
    child.once('message', (message: ServerMessage) => {
      clearTimeout(timer)
      const server: RunningServer = {
        child,
        port: message.port!,
        pid: child.pid!,
        memory: () =>
          new Promise((done) => {
            child.once('message', (reply: ServerMessage) =>
              done({ rss: reply.rss!, heapUsed: reply.heapUsed! }),
            )
            child.send({ type: 'memory' })
          }),
        loopDelay: () =>
          new Promise((done) => {
            child.once('message', (reply: ServerMessage) =>
              done({ maxMs: reply.maxMs!, p99Ms: reply.p99Ms! }),
            )
            child.send({ type: 'loop-delay' })
          }),
        stop: async () => {
          child.removeAllListeners('exit')
          if (child.exitCode !== null) return
          const exited = new Promise((done) => child.once('exit', done))
          // SIGINT lets --cpu-prof write its profile; SIGKILL if the server does not go.
          child.kill('SIGINT')
          const killer = setTimeout(() => child.kill('SIGKILL'), 5_000)
          await exited
          clearTimeout(killer)
        },
      }
      resolve(server)
    })
  })

/** User + system CPU time of a process, in milliseconds. */
export const cpuTimeMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 of stat (utime, stime), counted from after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond
}

/** Peak and current resident memory of a process, in bytes. */
export const residentMemory = (pid: number): { rss: number; peak: number } => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

export interface LoadHooks {
  onMeasureStart?(): void
  onMeasureEnd?(): void
  onCheckpoint?(name: string): Promise<void>
}

export const runLoad = (file: string, config: object, hooks: LoadHooks = {}): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const child = fork(here(`./load/${file}.ts`), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    pin(child.pid, 1)
    let result: LoadResult | undefined
    child.on('message', (message: LoadMessage) => {
      if (message.type === 'measure-start') hooks.onMeasureStart?.()
      else if (message.type === 'measure-end') hooks.onMeasureEnd?.()
      else if (message.type === 'checkpoint') {
        void (hooks.onCheckpoint?.(message.name) ?? Promise.resolve()).then(() =>
          child.send({ type: 'continue' }),
        )
      } else result = message.result
    })
    // 'close', not 'exit': IPC messages sent just before exiting may arrive after 'exit'.
    child.once('close', (code) => {
      if (result) resolve(result)
      else reject(new Error(`load generator ${file} exited with ${code} and no result`))
    })
    child.send(config)
  })
