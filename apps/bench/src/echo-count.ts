// `npm run echo-count -w @flumen/bench [-- --messages=N --impls=raw,flumen]`
//
// WebSocket echo cost counted rather than timed: each server runs under valgrind's callgrind, which
// counts the instructions the process executes, per thread, whatever else the machine is doing.
// Timed CPU per message moves ±20 % between runs on this 2-core machine (docs/BENCHMARKS.md). Two
// counts are reported: the main thread's (the event loop: JS, libuv, the GC work done there) and all
// threads', which also hold V8's background compiler and GC. Neither is exact: V8 decides some GC and
// compilation by time, so on a busy machine a count moves by several percent (all threads' more); on a
// quiet one the same code counted the same within 0.1 %. Compare runs made side by side, and read the
// per-function diff (`--keep=DIR`, then callgrind_annotate) for what moved. Kernel time is not counted: the
// read/write system calls per message, from /proc/<pid>/io in a run without valgrind, stand for it
// (equal counts of equal-sized calls cost the kernel the same).
//
// The load is the harness's echo shape (100 connections, 64-byte text, one message in flight each);
// counting starts after a warm-up (callgrind_control --zero), so start-up and JIT tiering stay out.
// It runs the packages' dist/: do not rebuild while it runs.

import type { ChildProcess } from 'node:child_process'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RawWebSocket } from './load/raw-ws.js'
import type { ServerMessage } from './servers/harness.js'

const argument = (name: string, fallback: string): string =>
  process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback

const connections = 100
const payload = Buffer.from('e'.repeat(64))
const warmupPerConnection = Number(argument('warmup', '1000'))
const messagesPerConnection = Number(argument('messages', '500'))
const impls = argument('impls', 'raw,flumen,hono').split(',')
/** Keep each server's callgrind dump here (`callgrind_annotate` reads them), instead of removing it. */
const keep = argument('keep', '')

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('echo-count needs valgrind (apt-get install -y valgrind)')
  process.exit(1)
}

interface Counted {
  impl: string
  /** On the main thread: the event loop's JS, libuv and the GC work done there. */
  mainThreadPerMessage: number
  /** On every thread: also V8's background compiler and GC, which a compile landing in the window moves. */
  instructionsPerMessage: number
  readCallsPerMessage: number
  writeCallsPerMessage: number
}

/** Read-type and write-type system calls of a process so far (`syscr`, `syscw`). */
const systemCalls = (pid: number): { reads: number; writes: number } => {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`${name}: (\\d+)`).exec(io)?.[1] ?? 0)
  return { reads: field('syscr'), writes: field('syscw') }
}

/** Every connection echoes `count` messages, one in flight each. */
const echo = (sockets: RawWebSocket[], count: number): Promise<void> =>
  Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((done) => {
          let left = count
          ws.onMessage = () => {
            left -= 1
            if (left === 0) done()
            else ws.send(payload)
          }
          ws.send(payload)
        }),
    ),
  ).then(() => undefined)

const callgrindControl = (pid: number, command: '--zero' | '--dump'): void => {
  const result = spawnSync('callgrind_control', [command, String(pid)], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`callgrind_control ${command} failed: ${result.stderr}`)
}

/**
 * The instruction totals of the dump callgrind wrote since the counters were zeroed, one file per
 * thread (`--separate-threads`): the main thread's (`-01`) and all of them.
 */
const dumpedInstructions = (dir: string): { main: number; all: number } => {
  const dumps = readdirSync(dir).filter((name) => /\.\d+-\d+$/.test(name))
  if (dumps.length === 0) throw new Error('callgrind wrote no dump')
  let main = 0
  let all = 0
  for (const dump of dumps) {
    const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, dump), 'utf8'))
    if (!totals) throw new Error(`no totals in ${dump}`)
    all += Number(totals[1])
    if (dump.endsWith('-01')) main = Number(totals[1])
  }
  return { main, all }
}

/** Starts the echo server `impl`, under callgrind when `callgrindOut` is given; resolves its port. */
const startServer = async (
  impl: string,
  callgrindOut: string | undefined,
): Promise<{ server: ChildProcess; port: number }> => {
  const node = [
    process.execPath,
    '--import',
    'tsx',
    fileURLToPath(new URL('./servers/ws.ts', import.meta.url)),
    impl,
  ]
  const [command, ...args] = callgrindOut
    ? [
        'valgrind',
        '--tool=callgrind',
        '--separate-threads=yes',
        `--callgrind-out-file=${callgrindOut}`,
        ...node,
      ]
    : node
  const server = spawn(command!, args, { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} did not start`)), 300_000)
    server.once('exit', (code) => reject(new Error(`${impl} exited with ${code}`)))
    server.once('message', (message: ServerMessage) => {
      clearTimeout(timer)
      resolve(message.port!)
    })
  })
  server.removeAllListeners('exit')
  return { server, port }
}

/** Warms `impl` up, then runs `measure` around the counted messages; the server is killed after. */
const measureEcho = async <T>(
  impl: string,
  callgrindOut: string | undefined,
  measure: (pid: number, run: () => Promise<void>) => Promise<T>,
): Promise<T> => {
  const { server, port } = await startServer(impl, callgrindOut)
  const sockets: RawWebSocket[] = []
  try {
    for (let index = 0; index < connections; index++)
      sockets.push(await RawWebSocket.connect(port, '/', index))
    await echo(sockets, warmupPerConnection)
    return await measure(server.pid!, () => echo(sockets, messagesPerConnection))
  } finally {
    for (const ws of sockets) ws.close()
    server.kill('SIGKILL')
  }
}

const count = async (impl: string): Promise<Counted> => {
  const messages = connections * messagesPerConnection
  // System calls from a plain run: under valgrind its own thread lock adds pipe reads and writes.
  const calls = await measureEcho(impl, undefined, async (pid, run) => {
    const before = systemCalls(pid)
    await run()
    const after = systemCalls(pid)
    return { reads: after.reads - before.reads, writes: after.writes - before.writes }
  })
  const dir = mkdtempSync(join(tmpdir(), 'flumen-echo-count-'))
  try {
    await measureEcho(impl, join(dir, 'callgrind.out'), async (pid, run) => {
      callgrindControl(pid, '--zero')
      await run()
      callgrindControl(pid, '--dump')
    })
    const counted = dumpedInstructions(dir)
    return {
      impl,
      mainThreadPerMessage: counted.main / messages,
      instructionsPerMessage: counted.all / messages,
      readCallsPerMessage: calls.reads / messages,
      writeCallsPerMessage: calls.writes / messages,
    }
  } finally {
    if (keep) {
      mkdirSync(keep, { recursive: true })
      for (const name of readdirSync(dir)) renameSync(join(dir, name), join(keep, `${impl}-${name}`))
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

// Repetitions, interleaved: V8 decides some of its garbage collection and compilation by time, so a
// count still moves by a few percent now and then; the median and range say how much.
const reps = Number(argument('reps', '3'))
const runs = new Map<string, Counted[]>(impls.map((impl) => [impl, []]))
for (let rep = 0; rep < reps; rep++) {
  for (const impl of impls) {
    runs.get(impl)!.push(await count(impl))
    console.error(`counted ${impl} (${rep + 1}/${reps})`)
  }
}
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
const per = (impl: string, key: 'mainThreadPerMessage' | 'instructionsPerMessage'): number[] =>
  runs.get(impl)!.map((run) => run[key])
const reference = impls[0]!
console.log(
  `\nWebSocket echo counted (${connections} connections × ${messagesPerConnection} messages after ${warmupPerConnection} of warm-up, 64-byte text, ${reps} repetitions)\n`,
)
console.log(
  '| implementation | main thread: instructions per message (median) | ratio (range) | all threads (median) | ratio (range) | read / write calls per message |',
)
console.log('| --- | --- | --- | --- | --- | --- |')
for (const impl of impls) {
  const columns = (['mainThreadPerMessage', 'instructionsPerMessage'] as const).map((key) => {
    const counts = per(impl, key)
    const ratios = counts.map((value, rep) => value / per(reference, key)[rep]!)
    return `${Math.round(median(counts)).toLocaleString('en-US')} | ${(median(counts) / median(per(reference, key))).toFixed(3)}x (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})`
  })
  const last = runs.get(impl)!.at(-1)!
  console.log(
    `| ${impl} | ${columns.join(' | ')} | ${last.readCallsPerMessage.toFixed(2)} / ${last.writeCallsPerMessage.toFixed(2)} |`,
  )
}
process.exit(0)
