// A process that floods one topic with publishes on a SQLite engine and reports every
// acknowledgement over IPC, until it is killed. See crash.test.ts.
import { sqliteEngine } from './index.js'

const engine = sqliteEngine({
  file: process.env.FILE!,
  synchronous: process.env.SYNC === 'full' ? 'full' : 'normal',
})
process.send?.({ port: 0 })
let next = 0
for (;;) {
  // A turn's worth of publishes, committed together; each ack is reported as it comes.
  const burst = Array.from({ length: 200 }, () => {
    const n = next++
    return engine.publish('flood', JSON.stringify({ n, pad: 'x'.repeat(100) })).then((stored) => {
      process.send?.({ acked: stored.offset, n })
    })
  })
  await Promise.all(burst)
}
