// `npm run bench [-- --quick] [--only=ws-echo,http-hello] [--reps=N] [--cpu-prof]`
// Every server runs in its own process and every load generator in another, on 127.0.0.1.
// Implementations are interleaved across repetitions; medians and ratios to the reference
// (the first implementation) are printed per scenario and written to results/.
// Over 350 lines on purpose: the table of every scenario and implementation lives in one place, so
// a new peer or scenario is one entry that cannot drift from the others.
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startRedisCluster } from '@flumen/testing'
import type { LoadResult } from './load/protocol.js'
import type { RunningServer } from './proc.js'
import { cpuTimeMs, residentMemory, runLoad, startServer } from './proc.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',')
const explicitReps = args.find((a) => a.startsWith('--reps='))?.slice(7)
const reps = Number(explicitReps ?? (quick ? 1 : 3))
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url))
const cpuProfileDir = args.includes('--cpu-prof') ? `${resultsDir}profiles` : undefined

// Nodes of the Redis scenarios meet under one key prefix, fresh for each bench run.
process.env.BENCH_REDIS_PREFIX ??= `flumen-bench:${Date.now()}:`

const timing = quick ? { warmupMs: 500, durationMs: 1_500 } : { warmupMs: 1_500, durationMs: 5_000 }

interface Sample {
  value: number
  p50?: number
  p99?: number
  cpuUsPerOp?: number
  extra?: Record<string, number>
}

interface Target {
  impl: string
  vs: string
  /**
   * The ratio impl/vs must be at least this (higher-is-better) or at most (lower-is-better, and
   * always for `p50`/`p99`).
   */
  ratio?: number
  /** Or: impl − vs must be at most this (for memory: "within N MiB"). */
  maxDifference?: number
  /** The column compared: the scenario's value (default), `p50`, `p99` or an extra column. */
  metric?: 'p50' | 'p99' | string
  label: string
}

interface Scenario {
  id: string
  title: string
  server: string
  impls: readonly { id: string; label: string }[]
  unit: string
  higherIsBetter: boolean
  opsName: string
  targets?: readonly Target[]
  /** Repetitions in full mode when the scenario is cheap and noisy (default `reps`). */
  fullReps?: number
  run(server: RunningServer): Promise<Sample>
}

/** Runs a load generator and reads the server's CPU time over its measuring window. */
const measured = async (
  server: RunningServer,
  file: string,
  config: object,
  /** Other server processes of the same implementation (more nodes): their CPU counts too. */
  others: RunningServer[] = [],
): Promise<Sample & { result: LoadResult }> => {
  let cpuStart = 0
  let cpuEnd = 0
  const cpuOfAll = (): number => [server, ...others].reduce((sum, s) => sum + cpuTimeMs(s.pid), 0)
  const result = await runLoad(
    file,
    { port: server.port, ...config },
    {
      onMeasureStart: () => {
        cpuStart = cpuOfAll()
      },
      onMeasureEnd: () => {
        cpuEnd = cpuOfAll()
      },
    },
  )
  const sample: Sample & { result: LoadResult } = {
    result,
    value: result.ops / (result.durationMs / 1000),
    cpuUsPerOp: result.ops > 0 ? ((cpuEnd - cpuStart) * 1000) / result.ops : Number.NaN,
  }
  if (result.p50 !== undefined) sample.p50 = result.p50
  if (result.p99 !== undefined) sample.p99 = result.p99
  if (result.extra) sample.extra = result.extra
  return sample
}

const wsImpls = [
  { id: 'raw', label: 'raw ws (reference)' },
  { id: 'hono', label: 'hono upgradeWebSocket' },
  { id: 'socketio', label: 'socket.io 4 (websocket)' },
  { id: 'flumen', label: 'Flumen @flumen/ws' },
] as const

const uploadScenario = (id: string, parallel: number): Scenario => {
  const bytes = ((quick ? 32 : 256) * 1_048_576) / parallel
  const rounds = quick ? 1 : 4
  return {
    id,
    title: `Upload ${bytes / 1_048_576} MiB × ${parallel}, ${rounds} rounds (multipart, SHA-256, to disk) + GET /ping at 200 req/s`,
    server: 'upload',
    impls: [
      { id: 'busboy', label: 'raw busboy (reference)' },
      { id: 'hono', label: 'hono parseBody' },
      { id: 'flumen', label: 'Flumen @flumen/uploads' },
    ],
    unit: 'MB/s',
    higherIsBetter: true,
    opsName: 'MiB',
    targets: [
      { impl: 'flumen', vs: 'busboy', ratio: 0.9, label: 'uploads ≥0.9x raw busboy MB/s' },
      {
        impl: 'flumen',
        vs: 'busboy',
        metric: 'peakRssMiB',
        maxDifference: 32,
        label: 'peak RSS within 32 MiB of raw busboy',
      },
      {
        impl: 'flumen',
        vs: 'busboy',
        metric: 'p99',
        ratio: 1.2,
        label: 'GET /ping p99 beside uploads ≤1.2x beside raw busboy',
      },
    ],
    run: async (server) => {
      await server.loopDelay() // from here on: the loop's delay during the uploads
      const sample = await measured(server, 'upload', { bytes, parallel, rounds })
      const peak = residentMemory(server.pid).peak
      const delay = await server.loopDelay()
      return {
        ...sample,
        value: sample.extra!.mbPerSecond!,
        cpuUsPerOp: sample.cpuUsPerOp! * 1_048_576,
        extra: { peakRssMiB: peak / 1_048_576, loopDelayMaxMs: delay.maxMs, loopDelayP99Ms: delay.p99Ms },
      }
    },
  }
}

/** The hub fan-out load: 2,000 protocol clients (500 quick), 64-byte payloads, 4 publishes in flight. */
const hubFanout = {
  mode: 'fanout',
  socketIo: false,
  flumen: true,
  connections: quick ? 500 : 2000,
  window: 4,
  payloadBytes: 64,
  ...timing,
} as const

const scenarios: Scenario[] = [
  {
    id: 'http-hello',
    title: 'HTTP hello (GET /, 32 keep-alive connections)',
    server: 'http',
    impls: [
      { id: 'raw', label: 'raw node:http (reference)' },
      { id: 'hono', label: 'bare Hono (@hono/node-server 2)' },
      { id: 'flumen', label: 'Flumen core, no plugins' },
      { id: 'flumen-all', label: 'Flumen, every plugin installed' },
      { id: 'fastify', label: 'fastify 5' },
    ],
    unit: 'req/s',
    higherIsBetter: true,
    opsName: 'req',
    targets: [
      { impl: 'flumen-all', vs: 'hono', ratio: 0.95, label: 'HTTP with all plugins ≥0.95x bare Hono' },
    ],
    run: (server) => measured(server, 'http', { connections: 32, ...timing }),
  },
  {
    id: 'ws-echo',
    title: 'WebSocket echo (100 connections, 64-byte text, one in flight each)',
    server: 'ws',
    impls: wsImpls,
    unit: 'msg/s',
    higherIsBetter: true,
    opsName: 'msg',
    // Closed loop: the load generator is what limits it (loadCpu near 100), and a server that
    // answers later gets fewer messages per read, so its CPU per message moves with its rate; the
    // CPU target is ws-echo-paced's, where every server does the same work per second.
    targets: [{ impl: 'flumen', vs: 'raw', ratio: 0.95, label: 'echo ≥0.95x raw ws' }],
    fullReps: 9,
    run: (server) =>
      measured(server, 'ws', {
        mode: 'echo',
        socketIo: server.child.spawnargs.includes('socketio'),
        connections: 100,
        payloadBytes: 64,
        ...timing,
      }),
  },
  {
    id: 'ws-echo-paced',
    title:
      'WebSocket echo at a fixed pace (100 connections × up to 500 msg/s, 64-byte text): CPU per message',
    server: 'ws',
    impls: wsImpls,
    unit: 'msg/s',
    higherIsBetter: true,
    opsName: 'msg',
    targets: [
      {
        impl: 'flumen',
        vs: 'raw',
        metric: 'cpuUsPerOp',
        ratio: 1.0,
        label: 'echo server CPU per message at the same pace ≤1.0x raw ws',
      },
    ],
    fullReps: 5,
    run: (server) =>
      measured(server, 'ws', {
        mode: 'echo',
        socketIo: server.child.spawnargs.includes('socketio'),
        connections: 100,
        payloadBytes: 64,
        pacedMs: 2,
        ...timing,
      }),
  },
  {
    id: 'ws-fanout',
    title: `WebSocket fan-out (${quick ? 500 : 2000} clients, 64-byte text, 4 publishes in flight)`,
    server: 'ws',
    impls: [...wsImpls, { id: 'flumen-hub', label: 'Flumen hub (protocol v1)' }],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    targets: [
      { impl: 'flumen-hub', vs: 'raw', ratio: 1.0, label: 'fan-out ≥1.0x raw ws' },
      { impl: 'flumen-hub', vs: 'socketio', ratio: 1.5, label: 'fan-out ≥1.5x socket.io' },
    ],
    run: (server) =>
      measured(server, 'ws', {
        mode: 'fanout',
        socketIo: server.child.spawnargs.includes('socketio'),
        flumen: server.child.spawnargs.includes('flumen-hub'),
        connections: quick ? 500 : 2000,
        window: 4,
        payloadBytes: 64,
        ...timing,
      }),
  },
  {
    id: 'ws-fanout-nodes',
    title: `Hub fan-out across nodes (${quick ? 500 : 2000} clients, Redis engine)`,
    server: 'ws',
    impls: [
      { id: 'flumen-hub', label: 'one node, memory engine (reference)' },
      { id: 'flumen-redis', label: 'one node, Redis engine' },
      { id: 'flumen-redis-2', label: 'two nodes, Redis engine' },
      { id: 'flumen-cluster-2', label: 'two nodes, Redis Cluster (3 masters)' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    run: async (server) => {
      const impl = server.child.spawnargs.at(-1)!
      // The second node shares the Redis prefix (set once per bench run); clients alternate.
      const second = impl.endsWith('-2') ? await startServer('ws', impl.slice(0, -2)) : undefined
      try {
        return await measured(
          server,
          'ws',
          {
            ...hubFanout,
            ...(second && { morePorts: [second.port] }),
          },
          second ? [second] : [],
        )
      } finally {
        await second?.stop()
      }
    },
  },
  {
    id: 'ws-fanout-durable',
    title: `Hub fan-out with durable history (${quick ? 500 : 2000} clients, SQLite engine)`,
    server: 'ws',
    impls: [
      { id: 'flumen-hub', label: 'memory engine (reference)' },
      { id: 'flumen-sqlite', label: 'SQLite engine, synchronous normal' },
      { id: 'flumen-sqlite-full', label: 'SQLite engine, synchronous full' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    targets: [{ impl: 'flumen-sqlite', vs: 'flumen-hub', ratio: 0.8, label: 'SQLite fan-out ≥0.8x memory' }],
    run: (server) => measured(server, 'ws', hubFanout),
  },
  {
    id: 'ws-fanout-contract',
    title: `Hub fan-out with a contract (${quick ? 500 : 2000} clients, every publish checked)`,
    server: 'ws',
    impls: [
      { id: 'flumen-hub', label: 'no contract (reference)' },
      { id: 'flumen-hub-zod', label: 'contract, zod 4 schema' },
      { id: 'flumen-hub-valibot', label: 'contract, valibot 1 schema' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    run: (server) => measured(server, 'ws', hubFanout),
  },
  {
    id: 'ws-fanout-deflate',
    title: `Fan-out with permessage-deflate (${quick ? 300 : 1000} clients, 2 KiB text messages)`,
    server: 'ws',
    impls: [
      { id: 'raw-deflate', label: 'raw ws, its per-connection deflate (reference)' },
      { id: 'flumen-hub-deflate', label: 'Flumen hub, compressed once per message' },
      { id: 'flumen-hub', label: 'Flumen hub, no compression' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    run: (server) =>
      measured(server, 'ws', {
        ...hubFanout,
        flumen:
          server.child.spawnargs.includes('flumen-hub') ||
          server.child.spawnargs.includes('flumen-hub-deflate'),
        connections: quick ? 300 : 1000,
        payloadBytes: 2048,
        deflate: true,
      }),
  },
  {
    id: 'ws-fanout-volatile',
    title: `Hub fan-out, volatile publishes (${quick ? 500 : 2000} clients, 64-byte text, 4 in flight)`,
    server: 'ws',
    impls: [
      { id: 'flumen-hub', label: 'Flumen hub, stored publishes (reference)' },
      { id: 'flumen-hub-volatile', label: 'Flumen hub, volatile publishes' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    targets: [],
    run: (server) =>
      measured(server, 'ws', {
        ...hubFanout,
        volatile: server.child.spawnargs.includes('flumen-hub-volatile'),
      }),
  },
  {
    id: 'ws-fanout-metrics',
    title: `Hub fan-out with @flumen/metrics (${quick ? 500 : 2000} clients, 64-byte text, 4 in flight)`,
    server: 'ws',
    impls: [
      { id: 'flumen-hub', label: 'Flumen hub, no metrics (reference)' },
      { id: 'flumen-hub-metrics', label: 'Flumen hub, @flumen/metrics on (scraped every second)' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    targets: [
      {
        impl: 'flumen-hub-metrics',
        vs: 'flumen-hub',
        ratio: 0.95,
        label: 'fan-out with metrics on ≥0.95x off',
      },
    ],
    run: (server) => measured(server, 'ws', hubFanout),
  },
  {
    id: 'yjs-fanout',
    title: `Yjs: one writer types into a document, ${quick ? 20 : 50} editors receive every update (8 in flight)`,
    server: 'yjs',
    impls: [
      { id: 'y-websocket', label: "y-websocket's server (@y/websocket-server, reference)" },
      { id: 'flumen-yjs', label: 'Flumen @flumen/yjs (hub, memory engine)' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    targets: [],
    run: (server) =>
      measured(server, 'yjs', {
        protocol: server.child.spawnargs.includes('flumen-yjs') ? 'flumen' : 'y-websocket',
        editors: quick ? 20 : 50,
        window: 8,
        ...timing,
      }),
  },
  {
    id: 'ws-fanout-delta',
    title: `State document fan-out (${quick ? 300 : 1000} clients, ~10 KB JSON, 4 fields change per publish)`,
    server: 'ws',
    impls: [
      { id: 'flumen-hub', label: 'Flumen hub, whole messages (reference)' },
      { id: 'flumen-hub-delta', label: 'Flumen hub, deltas (subscribe with delta: fossil)' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    targets: [
      {
        impl: 'flumen-hub-delta',
        vs: 'flumen-hub',
        metric: 'bytesPerDelivery',
        ratio: 0.2,
        label: 'deltas: ≥5x fewer bytes per delivery than whole messages',
      },
    ],
    run: (server) =>
      measured(server, 'ws', {
        ...hubFanout,
        connections: quick ? 300 : 1000,
        stateDocument: true,
        delta: server.child.spawnargs.includes('flumen-hub-delta'),
      }),
  },
  {
    id: 'ws-fanout-one',
    title: `Hub fan-out with one publish in flight (${quick ? 500 : 2000} clients: no batching help)`,
    server: 'ws',
    impls: [...wsImpls, { id: 'flumen-hub', label: 'Flumen hub (protocol v1)' }],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    run: (server) =>
      measured(server, 'ws', {
        ...hubFanout,
        socketIo: server.child.spawnargs.includes('socketio'),
        flumen: server.child.spawnargs.includes('flumen-hub'),
        window: 1,
      }),
  },
  {
    id: 'ws-reconnect-storm',
    title: `Reconnect storm (${quick ? 300 : 1000} clients drop and reconnect at once, ${quick ? 1 : 5} times; the hub's resubscribe from where they stood)`,
    server: 'ws',
    impls: [
      { id: 'raw', label: 'raw ws, open again (reference)' },
      { id: 'flumen-hub', label: 'Flumen hub: reconnect, subscribe with since, recover 5 missed' },
      { id: 'flumen-hub-auth', label: 'the same behind @flumen/auth (JWT per upgrade)' },
    ],
    unit: 'reconnects/s',
    higherIsBetter: true,
    opsName: 'reconnect',
    targets: [
      { impl: 'flumen-hub', vs: 'raw', ratio: 0.9, label: 'reconnect storm ≥0.9x raw ws connects/s' },
    ],
    run: (server) =>
      measured(server, 'ws', {
        mode: 'storm',
        socketIo: false,
        flumen: server.child.spawnargs.some((arg) => arg.startsWith('flumen-hub')),
        connections: quick ? 300 : 1000,
        payloadBytes: 0,
        missed: 5,
        rounds: quick ? 1 : 5,
        ...(server.child.spawnargs.includes('flumen-hub-auth') && {
          jwtSecret: 'flumen-bench-secret-of-at-least-32-bytes',
        }),
        ...timing,
      }),
  },
  {
    id: 'ws-idle',
    title: `Idle memory per WebSocket connection (${quick ? 2000 : 10000} connections, after GC)`,
    server: 'ws',
    impls: wsImpls,
    unit: 'bytes/conn',
    higherIsBetter: false,
    opsName: 'conn',
    targets: [{ impl: 'flumen', vs: 'raw', ratio: 1.25, label: 'idle memory ≤1.25x raw ws' }],
    run: async (server) => {
      const connections = quick ? 2000 : 10000
      const before = await server.memory()
      let after = before
      await runLoad(
        'ws',
        {
          port: server.port,
          mode: 'idle',
          socketIo: server.child.spawnargs.includes('socketio'),
          connections,
          payloadBytes: 0,
          ...timing,
        },
        {
          onCheckpoint: async () => {
            after = await server.memory()
          },
        },
      )
      return {
        value: (after.rss - before.rss) / connections,
        extra: { heapBytesPerConn: (after.heapUsed - before.heapUsed) / connections },
      }
    },
  },
  {
    id: 'sse-fanout',
    title: `SSE fan-out (${quick ? 300 : 1000} streams, 64-byte events, 4 publishes in flight)`,
    server: 'sse',
    impls: [
      { id: 'raw', label: 'raw res.write (reference)' },
      { id: 'hono', label: 'hono streamSSE' },
      { id: 'better-sse', label: 'better-sse channel' },
      { id: 'flumen', label: 'Flumen hub.sse()' },
    ],
    unit: 'deliveries/s',
    higherIsBetter: true,
    opsName: 'delivery',
    targets: [
      { impl: 'flumen', vs: 'raw', ratio: 0.9, label: 'SSE fan-out ≥0.9x raw' },
      { impl: 'flumen', vs: 'better-sse', ratio: 1.3, label: 'SSE fan-out ≥1.3x better-sse' },
    ],
    run: (server) =>
      measured(server, 'sse', { streams: quick ? 300 : 1000, window: 4, payloadBytes: 64, ...timing }),
  },
  uploadScenario('upload-single', 1),
  uploadScenario('upload-parallel', 4),
]

const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const fmt = (value: number | undefined, digits = 0): string =>
  value === undefined || !Number.isFinite(value)
    ? '–'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

interface Row {
  impl: string
  label: string
  value: number
  ratio: number
  p50?: number
  p99?: number
  cpuUsPerOp?: number
  extra: Record<string, number>
  samples: number[]
  cpuSamples: number[]
  /** Lowest and highest ratio to the reference of one repetition (runs paired by repetition). */
  ratioRange: [number, number]
  /** Median server CPU per op over the reference's, and its range over the repetitions. */
  cpuRatio: number
  cpuRatioRange: [number, number]
  /** Repetitions in which this implementation failed (crashed, errored, wrong result). */
  failed: number
}

/** min and max of a[i] / b[i] over the repetitions both have. */
const pairedRange = (a: number[], b: number[]): [number, number] => {
  const ratios = a.slice(0, b.length).map((value, i) => value / b[i]!)
  return ratios.length === 0 ? [Number.NaN, Number.NaN] : [Math.min(...ratios), Math.max(...ratios)]
}

const summarize = (
  scenario: Scenario,
  samples: Map<string, Sample[]>,
  failures: Map<string, number>,
): Row[] => {
  const rows = scenario.impls.map(({ id, label }) => {
    const list = samples.get(id) ?? []
    const extraKeys = [...new Set(list.flatMap((s) => Object.keys(s.extra ?? {})))]
    return {
      impl: id,
      label,
      value: median(list.map((s) => s.value)),
      ratio: Number.NaN,
      p50: median(list.map((s) => s.p50 ?? Number.NaN)),
      p99: median(list.map((s) => s.p99 ?? Number.NaN)),
      cpuUsPerOp: median(list.map((s) => s.cpuUsPerOp ?? Number.NaN)),
      extra: Object.fromEntries(
        extraKeys.map((k) => [k, median(list.map((s) => s.extra?.[k] ?? Number.NaN))]),
      ),
      samples: list.map((s) => s.value),
      cpuSamples: list.map((s) => s.cpuUsPerOp ?? Number.NaN),
      ratioRange: [Number.NaN, Number.NaN] as [number, number],
      cpuRatio: Number.NaN,
      cpuRatioRange: [Number.NaN, Number.NaN] as [number, number],
      failed: failures.get(id) ?? 0,
    }
  })
  const reference = rows[0]!
  for (const row of rows) {
    row.ratio = row.value / reference.value
    row.ratioRange = pairedRange(row.samples, reference.samples)
    row.cpuRatio = (row.cpuUsPerOp ?? Number.NaN) / (reference.cpuUsPerOp ?? Number.NaN)
    row.cpuRatioRange = pairedRange(row.cpuSamples, reference.cpuSamples)
  }
  return rows
}

const targetLines = (scenario: Scenario, rows: Row[]): string[] =>
  (scenario.targets ?? []).map((target) => {
    const impl = rows.find((r) => r.impl === target.impl)
    const vs = rows.find((r) => r.impl === target.vs)
    if (!impl || !vs) return `- ${target.label}: pending (no ${target.impl} row yet)`
    const metric = target.metric
    const pick = (row: Row): number =>
      metric === undefined
        ? row.value
        : metric === 'p50' || metric === 'p99' || metric === 'cpuUsPerOp'
          ? (row[metric] ?? Number.NaN)
          : (row.extra[metric] ?? Number.NaN)
    if (target.maxDifference !== undefined) {
      const difference = pick(impl) - pick(vs)
      const met = difference <= target.maxDifference
      return `- ${target.label}: ${met ? 'met' : 'MISSED'} (${difference >= 0 ? '+' : ''}${difference.toFixed(1)})`
    }
    const ratio = pick(impl) / pick(vs)
    const higherIsBetter = metric === undefined ? scenario.higherIsBetter : false
    const met = higherIsBetter ? ratio >= target.ratio! : ratio <= target.ratio!
    return `- ${target.label}: ${met ? 'met' : 'MISSED'} (${ratio.toFixed(2)}x)`
  })

const markdownTable = (scenario: Scenario, rows: Row[]): string => {
  const extraKeys = [...new Set(rows.flatMap((r) => Object.keys(r.extra)))]
  const header = [
    'implementation',
    scenario.unit,
    'ratio',
    'ratio range',
    'p50 ms',
    'p99 ms',
    `server CPU µs/${scenario.opsName}`,
    'CPU ratio (range)',
    ...extraKeys,
  ]
  const range = ([low, high]: [number, number]): string =>
    Number.isNaN(low) ? '–' : `${fmt(low, 2)}–${fmt(high, 2)}`
  const lines = [
    `### ${scenario.title}`,
    '',
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows
      .map((r) =>
        [
          r.label,
          fmt(r.value),
          `${fmt(r.ratio, 2)}x`,
          range(r.ratioRange),
          fmt(r.p50, 2),
          fmt(r.p99, 2),
          fmt(r.cpuUsPerOp, 2),
          Number.isNaN(r.cpuRatio) ? '–' : `${fmt(r.cpuRatio, 2)}x (${range(r.cpuRatioRange)})`,
          ...extraKeys.map((k) => fmt(r.extra[k], k.includes('PerConn') ? 0 : 1)),
        ].join(' | '),
      )
      .map((line) => `| ${line} |`),
    '',
    ...targetLines(scenario, rows),
  ]
  return lines.join('\n')
}

const main = async (): Promise<void> => {
  const selected = scenarios.filter((s) => !only || only.includes(s.id))
  if (selected.length === 0)
    throw new Error(`no scenario matches --only; ids: ${scenarios.map((s) => s.id).join(', ')}`)
  mkdirSync(resultsDir, { recursive: true })
  const started = Date.now()
  const report: { scenario: string; title: string; unit: string; rows: Row[] }[] = []
  const markdown: string[] = []
  // A Redis Cluster for the scenarios that need one, started once (3 masters, no replicas).
  if (selected.some((scenario) => scenario.impls.some((impl) => impl.id.startsWith('flumen-cluster')))) {
    const cluster = await startRedisCluster({ masters: 3, replicas: 0 })
    process.env.BENCH_REDIS_CLUSTER = JSON.stringify(cluster.startupNodes)
    stopCluster = () => cluster.destroy()
  }
  for (const scenario of selected) {
    const samples = new Map<string, Sample[]>()
    const failures = new Map<string, number>()
    const scenarioReps = quick || explicitReps ? reps : (scenario.fullReps ?? reps)
    for (let rep = 0; rep < scenarioReps; rep++) {
      // Rotate the order each repetition so no implementation always runs first or last.
      const order = scenario.impls.map((_, i) => scenario.impls[(i + rep) % scenario.impls.length]!)
      for (const { id } of order) {
        // A failing implementation is reported in its row; the run goes on with the others.
        try {
          const server = await startServer(scenario.server, id, cpuProfileDir ? { cpuProfileDir } : {})
          try {
            const sample = await scenario.run(server)
            samples.set(id, [...(samples.get(id) ?? []), sample])
          } finally {
            await server.stop()
          }
        } catch (err) {
          console.error(
            `bench: ${scenario.id} ${id} failed: ${err instanceof Error ? err.message : String(err)}`,
          )
          failures.set(id, (failures.get(id) ?? 0) + 1)
        }
      }
    }
    const rows = summarize(scenario, samples, failures)
    const table = markdownTable(scenario, rows)
    console.log(`\n${table}\n`)
    markdown.push(table)
    report.push({ scenario: scenario.id, title: scenario.title, unit: scenario.unit, rows })
  }
  const meta = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    reps,
    node: process.version,
    durationS: Math.round((Date.now() - started) / 1000),
  }
  const withMoreReps = selected.filter((scenario) => scenario.fullReps !== undefined)
  const moreReps =
    withMoreReps.length === 0
      ? ''
      : ` (${withMoreReps.map((scenario) => `${scenario.fullReps} for ${scenario.id}`).join(', ')})`
  const stamp = meta.date.replace(/[:.]/g, '-')
  const json = JSON.stringify({ meta, report }, null, 2)
  writeFileSync(`${resultsDir}bench-${stamp}.json`, json)
  writeFileSync(`${resultsDir}latest.json`, json)
  writeFileSync(
    `${resultsDir}latest.md`,
    `Run ${meta.date}, ${meta.mode} mode, ${reps} repetition(s)${quick || explicitReps ? '' : moreReps}, Node ${meta.node}, ${meta.durationS} s.\n\n${markdown.join('\n\n')}\n`,
  )
  console.log(
    `bench: ${selected.length} scenarios in ${meta.durationS} s; results in apps/bench/results/latest.{json,md}`,
  )
  await stopCluster?.()
}

let stopCluster: (() => Promise<void>) | undefined

await main()
