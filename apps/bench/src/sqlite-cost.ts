// `npm run sqlite-cost -w @flumen/bench`: publishes per second on the SQLite engine by commit mode,
// beside the memory engine, for docs/BENCHMARKS.md. "Burst" publishes 200 per event-loop turn (one
// transaction each turn: group commit); "one by one" awaits each publish (one transaction each).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Engine } from '@flumen/broadcast'
import { memoryEngine } from '@flumen/broadcast'
import { sqliteEngine } from '@flumen/broadcast-sqlite'

const quick = process.argv.includes('--quick')
const total = quick ? 5_000 : 40_000
const payload = JSON.stringify({ text: 'x'.repeat(100) })

const rate = async (engine: Engine, burst: number): Promise<number> => {
  engine.attach({ onMessage: () => {}, onPresence: () => {} })
  const count = burst === 1 ? total / 10 : total
  const started = performance.now()
  for (let i = 0; i < count; i += burst)
    await Promise.all(
      Array.from({ length: burst }, (_, j) => engine.publish(`topic:${(i + j) % 100}`, payload)),
    )
  return count / ((performance.now() - started) / 1000)
}

const dir = await mkdtemp(join(tmpdir(), 'flumen-sqlite-cost-'))
try {
  const rows: [string, number, number][] = []
  const engines: [string, (file: string) => Engine][] = [
    ['memory engine', () => memoryEngine()],
    ['SQLite, synchronous normal (WAL)', (file) => sqliteEngine({ file, synchronous: 'normal' })],
    ['SQLite, synchronous full (WAL)', (file) => sqliteEngine({ file, synchronous: 'full' })],
  ]
  for (const [label, create] of engines) {
    const burstEngine = create(join(dir, `${rows.length}-burst.db`))
    const burst = await rate(burstEngine, 200)
    await burstEngine.close()
    const singleEngine = create(join(dir, `${rows.length}-single.db`))
    const single = await rate(singleEngine, 1)
    await singleEngine.close()
    rows.push([label, burst, single])
  }
  console.log(
    '| engine | publishes/s, 200 a turn (group commit) | publishes/s, one at a time (a commit each) |',
  )
  console.log('| --- | --- | --- |')
  for (const [label, burst, single] of rows)
    console.log(
      `| ${label} | ${Math.round(burst).toLocaleString('en')} | ${Math.round(single).toLocaleString('en')} |`,
    )
} finally {
  await rm(dir, { recursive: true, force: true })
}
