// HTTP load: `connections` keep-alive connections, each sending GET / as soon as the previous
// response arrived.
import { Histogram } from './histogram.js'
import { measureWindow, runLoad } from './protocol.js'
import { getRequest, RawHttpConnection } from './raw-http.js'

export interface HttpLoadConfig {
  port: number
  connections: number
  warmupMs: number
  durationMs: number
}

runLoad<HttpLoadConfig>(async (config) => {
  const connections = await Promise.all(
    Array.from({ length: config.connections }, (_, i) => RawHttpConnection.open(config.port, i)),
  )
  const histogram = new Histogram()
  const request = Buffer.from(getRequest('/'))
  let measuring = false
  let running = true
  let ops = 0
  let errors = 0
  const loops = connections.map(async (connection) => {
    while (running) {
      const started = performance.now()
      const response = await connection.request(request)
      if (response.status !== 200) errors++
      if (measuring) {
        histogram.record(performance.now() - started)
        ops++
      }
    }
  })
  const { durationMs, loadCpu } = await measureWindow(config, (on) => {
    measuring = on
  })
  running = false
  await Promise.all(loops)
  for (const connection of connections) connection.close()
  return {
    ops,
    durationMs,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    extra: { errors, loadCpu },
  }
})
