// Upload load: `rounds` times `parallel` multipart uploads of `bytes` each over raw sockets, written
// with backpressure, while 4 keep-alive connections GET /ping every 20 ms each (200 req/s) for
// latency. Rounds make the window long enough for a p99 of thousands of pings, not dozens.
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Histogram } from './histogram.js'
import { notify, runLoad, sleep } from './protocol.js'
import { getRequest, RawHttpConnection } from './raw-http.js'

export interface UploadLoadConfig {
  port: number
  bytes: number
  parallel: number
  /** Rounds of `parallel` uploads, one after the other. @default 1 */
  rounds?: number
}

const pingers = 4

const chunk = randomBytes(1 << 20)
const boundary = 'flumenbenchboundary7MA4YWxkTrZu0gW'

const expectedHash = (bytes: number): string => {
  const hash = createHash('sha256')
  for (let left = bytes; left > 0; left -= chunk.length)
    hash.update(left >= chunk.length ? chunk : chunk.subarray(0, left))
  return hash.digest('hex')
}

const upload = async (
  port: number,
  bytes: number,
  index: number,
): Promise<{ sha256: string; size: number }> => {
  const preamble = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f${index}.bin"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  )
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`)
  const length = preamble.length + bytes + epilogue.length
  const connection = await RawHttpConnection.open(port, 100 + index)
  const response = connection.request(
    `POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
      `Content-Length: ${length}\r\n\r\n`,
    preamble,
  )
  for (let left = bytes; left > 0; left -= chunk.length) {
    const ok = connection.socket.write(left >= chunk.length ? chunk : chunk.subarray(0, left))
    if (!ok) await once(connection.socket, 'drain')
  }
  connection.socket.write(epilogue)
  const { status, body } = await response
  connection.close()
  if (status !== 200) throw new Error(`upload failed with ${status}: ${body.toString()}`)
  return JSON.parse(body.toString()) as { sha256: string; size: number }
}

runLoad<UploadLoadConfig>(async (config) => {
  const expected = expectedHash(config.bytes)
  const histogram = new Histogram()
  const connections = await Promise.all(
    Array.from({ length: pingers }, (_, i) => RawHttpConnection.open(config.port, i)),
  )
  let running = true
  // Started now, awaited after the uploads: they must not reject unobserved meanwhile.
  const request = Buffer.from(getRequest('/ping'))
  const pings = connections.map(async (pinger, i) => {
    await sleep((20 / pingers) * i) // spread over the 20 ms
    while (running) {
      const started = performance.now()
      await pinger.request(request)
      histogram.record(performance.now() - started)
      await sleep(20)
    }
  })
  for (const ping of pings) ping.catch(() => {})
  const rounds = config.rounds ?? 1
  notify({ type: 'measure-start' })
  const started = performance.now()
  const results: { sha256: string; size: number }[] = []
  for (let round = 0; round < rounds; round++)
    results.push(
      ...(await Promise.all(
        Array.from({ length: config.parallel }, (_, i) => upload(config.port, config.bytes, i)),
      )),
    )
  const durationMs = performance.now() - started
  notify({ type: 'measure-end' })
  running = false
  await Promise.all(pings)
  for (const pinger of connections) pinger.close()
  const mismatches = results.filter((r) => r.sha256 !== expected || r.size !== config.bytes).length
  if (mismatches > 0) throw new Error(`${mismatches} uploads came back with a wrong size or SHA-256`)
  const totalBytes = config.bytes * config.parallel * rounds
  return {
    ops: totalBytes,
    durationMs,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    extra: { mbPerSecond: totalBytes / 1_048_576 / (durationMs / 1000) },
  }
})
