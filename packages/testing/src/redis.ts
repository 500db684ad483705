// Redis servers of the tests' own, on free ports: single instances to kill, stall and restart, a
// Redis Cluster (masters with replicas), and a Sentinel setup. Each runs in a temp dir of its own.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A TCP port nothing listens on now. */
export const freePort = async (): Promise<number> => {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Whether a Redis answers PING at `url`. */
export const pingRedis = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = createConnection({ host: hostname, port: Number(port || 6379) })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })

/** The shared Redis of the test run (`REDIS_URL`, default 127.0.0.1:6379). */
export const sharedRedisUrl: string = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * Whether the tests that need the shared Redis and the `redis-server` binary can run. Locally a
 * missing one skips them with a loud message; in CI (CI=true) it fails the run.
 */
export const requireRedis = async (): Promise<boolean> => {
  const [reachable, binary] = await Promise.all([
    pingRedis(sharedRedisUrl),
    run('redis-server', ['--version']).then(
      () => true,
      () => false,
    ),
  ])
  if (reachable && binary) return true
  const message = `${reachable ? '' : `Redis is not reachable at ${sharedRedisUrl}. `}${binary ? '' : 'redis-server is not installed. '}Start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no (apt-get install -y redis-server)`
  if (process.env.CI) throw new Error(`${message} (required in CI)`)
  console.warn(`\n\n!!! SKIPPING tests that need Redis !!!\n${message}\n\n`)
  return false
}

/** A key prefix no other run uses, so runs never see each other's data. */
export const uniquePrefix = (): string =>
  `flumen-test:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}:`

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Its working directory (dump.rdb, nodes.conf). */
  readonly dir: string
  /** `redis-cli` against it; resolves with what it printed. */
  cli(...args: string[]): Promise<string>
  /** SIGKILL (default) or SIGTERM; resolves once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port and directory (loading what it persisted, if anything). */
  start(): Promise<void>
  /** Frees it for good: stopped, directory removed. */
  destroy(): Promise<void>
}

export interface RedisServerOptions {
  /** Extra `redis-server` arguments, e.g. `['--save', '']`. Default: no persistence. */
  args?: readonly string[]
  port?: number
}

const launch = async (port: number, dir: string, args: readonly string[]): Promise<ChildProcess> => {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData)
        child.stdout!.resume()
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.resume()
    child.once('exit', () => reject(new Error(`redis-server on ${port} exited: ${output.slice(-500)}`)))
  })
  return child
}

/** A `redis-server` of the test's own on a free port. */
export const startRedis = async (options: RedisServerOptions = {}): Promise<RedisServer> => {
  const port = options.port ?? (await freePort())
  const dir = await mkdtemp(join(tmpdir(), 'flumen-redis-'))
  const args = options.args ?? []
  return serverProcess(port, dir, () => launch(port, dir, args))
}

/** A RedisServer handle over a process started (and restarted) by `start`. */
const serverProcess = async (
  port: number,
  dir: string,
  start: () => Promise<ChildProcess>,
): Promise<RedisServer> => {
  let child: ChildProcess | undefined = await start()
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    cli: async (...cliArgs) => (await run('redis-cli', ['-p', String(port), ...cliArgs])).stdout.trim(),
    stop: async (signal = 'SIGKILL') => {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      running.kill(signal)
      await once(running, 'exit')
    },
    start: async () => {
      child ??= await start()
    },
    destroy: async () => {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  return server
}

export interface RedisCluster {
  readonly nodes: readonly RedisServer[]
  /** Where clients start (every node). */
  readonly startupNodes: readonly { host: string; port: number }[]
  /** The node serving `key`'s slot as master now. */
  masterOf(key: string): Promise<RedisServer>
  /** Resolves once every node reports `cluster_state:ok` and each slot has a master that answers. */
  waitHealthy(timeoutMs?: number): Promise<void>
  destroy(): Promise<void>
}

/**
 * A Redis Cluster of `masters` masters with `replicas` replicas each (`redis-cli --cluster create`),
 * quick to fail over (`cluster-node-timeout` 1 s).
 */
export const startRedisCluster = async ({
  masters = 3,
  replicas = 1,
}: {
  masters?: number
  replicas?: number
} = {}): Promise<RedisCluster> => {
  const count = masters * (1 + replicas)
  const nodes = await Promise.all(
    Array.from({ length: count }, () =>
      startRedis({
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-node-timeout',
          '1000',
          '--cluster-config-file',
          'nodes.conf',
        ],
      }),
    ),
  )
  const addresses = nodes.map((node) => `127.0.0.1:${node.port}`)
  await run('redis-cli', [
    '--cluster',
    'create',
    ...addresses,
    '--cluster-replicas',
    String(replicas),
    '--cluster-yes',
  ])
  const cluster: RedisCluster = {
    nodes,
    startupNodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    masterOf: async (key) => {
      const slot = Number(await nodes[0]!.cli('cluster', 'keyslot', key))
      for (const node of nodes) {
        // `cluster nodes`: id, address, flags, master, ping, pong, epoch, link, then slot ranges.
        const lines = (await node.cli('cluster', 'nodes').catch(() => '')).split('\n')
        const self = lines.find((line) => line.includes('myself') && line.includes('master'))
        if (!self) continue
        for (const range of self.split(' ').slice(8)) {
          const [from, to] = range.split('-').map(Number)
          if (slot >= from! && slot <= (to ?? from)!) return node
        }
      }
      throw new Error(`no master serves ${key}`)
    },
    waitHealthy: async (timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const states = await Promise.all(
          nodes.map((node) => node.cli('cluster', 'info').catch(() => 'unreachable')),
        )
        const up = nodes.filter((_, i) => states[i] !== 'unreachable' && states[i] !== '')
        const ports = new Set(up.map((node) => String(node.port)))
        let healthy =
          up.length > 0 && up.every((_, i) => states[nodes.indexOf(up[i]!)]!.includes('cluster_state:ok'))
        if (healthy) {
          // Every master that serves slots is alive and answering (a killed one is listed until
          // its replica takes over).
          const table = (await up[0]!.cli('cluster', 'nodes').catch(() => '')).split('\n')
          for (const line of table) {
            const fields = line.split(' ')
            if (!fields[2]?.includes('master') || fields.length <= 8) continue
            const port = fields[1]!.split('@')[0]!.split(':')[1]!
            if (fields[2].includes('fail') || !ports.has(port)) healthy = false
          }
        }
        if (healthy) return
        if (Date.now() > deadline)
          throw new Error(`the cluster did not become healthy: ${states.join(' | ')}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    },
    destroy: async () => {
      await Promise.all(nodes.map((node) => node.destroy()))
    },
  }
  await cluster.waitHealthy()
  // A replica that never synced with its master refuses to fail over: wait until every one has.
  const deadline = Date.now() + 20_000
  for (const node of nodes) {
    for (;;) {
      const replication = await node.cli('info', 'replication')
      if (replication.includes('role:master') || replication.includes('master_link_status:up')) break
      if (Date.now() > deadline) throw new Error(`replica ${node.port} did not sync`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return cluster
}

export interface SentinelSetup {
  readonly master: RedisServer
  readonly replica: RedisServer
  readonly sentinels: readonly RedisServer[]
  /** The master set's name. */
  readonly name: string
  /** The address Sentinel gives as master now. */
  currentMaster(): Promise<number>
  destroy(): Promise<void>
}

/** A master, a replica and `count` Sentinels (quorum 1) that fail over within about a second. */
export const startSentinel = async ({ count = 1 }: { count?: number } = {}): Promise<SentinelSetup> => {
  const name = 'flumen'
  const master = await startRedis()
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] })
  const sentinels: RedisServer[] = []
  for (let i = 0; i < count; i++) {
    const port = await freePort()
    const dir = await mkdtemp(join(tmpdir(), 'flumen-sentinel-'))
    const { writeFile } = await import('node:fs/promises')
    const config = join(dir, 'sentinel.conf')
    await writeFile(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} 500`,
        `sentinel failover-timeout ${name} 2000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    )
    const launchSentinel = async (): Promise<ChildProcess> => {
      const child = spawn('redis-server', [config, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] })
      child.stderr!.resume()
      let output = ''
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes('+monitor')) resolve()
        })
        child.once('exit', () => reject(new Error(`sentinel exited: ${output.slice(-500)}`)))
      })
      return child
    }
    const sentinel = await serverProcess(port, dir, launchSentinel)
    sentinels.push(sentinel)
  }
  // The replica is in sync before anything relies on it.
  const deadline = Date.now() + 10_000
  while (!(await replica.cli('info', 'replication')).includes('master_link_status:up')) {
    if (Date.now() > deadline) throw new Error('the replica did not sync')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    master,
    replica,
    sentinels,
    name,
    currentMaster: async () =>
      Number((await sentinels[0]!.cli('sentinel', 'get-master-addr-by-name', name)).split('\n')[1]),
    destroy: async () => {
      await Promise.all([...sentinels, replica, master].map((server) => server.destroy()))
    },
  }
}
