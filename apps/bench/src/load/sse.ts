// SSE fan-out load: `streams` raw event-stream connections; a separate keep-alive connection
// POSTs `#seq#…` to /publish whenever fewer than `window` publishes are still being delivered.

import type { Socket } from 'node:net'
import { connect } from 'node:net'
import { Histogram } from './histogram.js'
import { FanoutTracker, localAddress, measureWindow, runLoad, sleep } from './protocol.js'
import { RawHttpConnection } from './raw-http.js'

export interface SseLoadConfig {
  port: number
  streams: number
  warmupMs: number
  durationMs: number
  window: number
  payloadBytes: number
}

const openStream = (port: number, index: number, onEvent: (id: number) => void): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: localAddress(index) })
    let carry = ''
    let opened = false
    // Only `#seq#` markers are read: headers, chunk sizes and SSE field names hold no '#'.
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      if (!opened) {
        opened = true
        resolve(socket)
      }
      const text = carry + chunk
      carry = ''
      let at = text.indexOf('#')
      while (at !== -1) {
        if (at + 8 > text.length) {
          carry = text.slice(at)
          break
        }
        onEvent(Number(text.slice(at + 1, at + 7)))
        at = text.indexOf('#', at + 8)
      }
    })
    socket.once('error', reject)
    socket.write(`GET /sse?topic=bench HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
  })

runLoad<SseLoadConfig>(async (config) => {
  const histogram = new Histogram()
  const tracker = new FanoutTracker(histogram, config.streams)
  let running = true
  let seq = 0
  let inFlight = 0
  const padding = 'x'.repeat(Math.max(0, config.payloadBytes - 8))
  const publisher = await RawHttpConnection.open(config.port, config.streams)
  let publishing = false

  const pump = async (): Promise<void> => {
    if (publishing) return
    publishing = true
    while (running && inFlight < config.window) {
      seq++
      inFlight++
      tracker.sent(seq)
      const body = Buffer.from(`#${String(seq).padStart(6, '0')}#${padding}`)
      await publisher.request(
        `POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`,
        body,
      )
    }
    publishing = false
  }
  const onEvent = (id: number): void => {
    if (!tracker.delivered(id)) return
    inFlight--
    void pump()
  }

  const sockets: Socket[] = []
  for (let i = 0; i < config.streams; i += 100) {
    const count = Math.min(100, config.streams - i)
    sockets.push(
      ...(await Promise.all(
        Array.from({ length: count }, (_, j) => openStream(config.port, i + j, onEvent)),
      )),
    )
  }
  await sleep(200) // every stream registered before the first publish
  void pump()
  const { durationMs, loadCpu } = await measureWindow(config, (on) => {
    tracker.measuring = on
  })
  running = false
  for (const socket of sockets) socket.destroy()
  publisher.close()
  return {
    ops: tracker.deliveries,
    durationMs,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    extra: { loadCpu },
  }
})
