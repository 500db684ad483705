// WebSocket load: echo (messages/s and round-trip latency), fan-out (deliveries/s and
// publish-to-delivery latency) and idle (connections held while the server's memory is read).
import { Histogram } from './histogram.js'
import { checkpoint, FanoutTracker, measureWindow, runLoad } from './protocol.js'
import { answerSocketIoPing, RawWebSocket, socketIoConnect } from './raw-ws.js'

export interface WsLoadConfig {
  port: number
  mode: 'echo' | 'fanout' | 'idle'
  /** Speak Socket.IO's framing instead of plain messages. */
  socketIo: boolean
  /** Speak Flumen protocol v1: subscribe to `bench` first, publish with `echo`. */
  flumen?: boolean
  connections: number
  warmupMs: number
  durationMs: number
  /** Publishes in flight at once (fan-out). */
  window?: number
  payloadBytes: number
  path?: string
  /** More server ports (other nodes): connections are spread over `port` and these, in turn. */
  morePorts?: number[]
  /**
   * Offer permessage-deflate (no context takeover) and publish text that compresses like prose:
   * compressed deliveries are counted in order (each client's n-th message is publish n), not inflated.
   */
  deflate?: boolean
}

const subscribeFlumen = (ws: RawWebSocket): Promise<RawWebSocket> =>
  new Promise((resolve) => {
    ws.onMessage = (payload) => {
      if (payload.includes('"ack"')) resolve(ws)
    }
    ws.send(Buffer.from('{"type":"subscribe","id":1,"topic":"bench"}'))
  })

const portFor = (config: WsLoadConfig, index: number): number => {
  const ports = [config.port, ...(config.morePorts ?? [])]
  return ports[index % ports.length]!
}

const connectAll = async (config: WsLoadConfig): Promise<RawWebSocket[]> => {
  const sockets: RawWebSocket[] = []
  const batch = 200
  for (let i = 0; i < config.connections; i += batch) {
    const count = Math.min(batch, config.connections - i)
    const opened = await Promise.all(
      Array.from({ length: count }, (_, j) =>
        config.socketIo
          ? socketIoConnect(config.port, i + j)
          : config.flumen
            ? RawWebSocket.connect(portFor(config, i + j), '/', i + j, config.deflate).then(subscribeFlumen)
            : RawWebSocket.connect(config.port, config.path ?? '/', i + j, config.deflate),
      ),
    )
    sockets.push(...opened)
  }
  return sockets
}

const encode = (config: WsLoadConfig, event: string, text: string): Buffer =>
  Buffer.from(
    config.socketIo
      ? `42["${event}","${text}"]`
      : config.flumen
        ? `{"type":"publish","topic":"bench","data":"${text}","echo":true}`
        : text,
  )

/** `length` characters of word-like text (deterministic): compresses about as JSON and prose do. */
const prose = (length: number): string => {
  const words = ['state', 'room', 'value', 'offset', 'alice', 'bob', 'deploy', 'cursor', 'online', 'ready']
  let text = ''
  let seed = 7
  while (text.length < length) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    text += `${words[seed % words.length]}${seed % 1000} `
  }
  return text.slice(0, length)
}

runLoad<WsLoadConfig>(async (config) => {
  const sockets = await connectAll(config)
  const histogram = new Histogram()
  let measuring = false
  let ops = 0
  const padding = config.deflate
    ? prose(Math.max(0, config.payloadBytes - 8))
    : 'x'.repeat(Math.max(0, config.payloadBytes - 8))

  if (config.mode === 'idle') {
    await checkpoint('connected')
    for (const ws of sockets) ws.close()
    return { ops: sockets.length, durationMs: 0 }
  }

  if (config.mode === 'echo') {
    const message = encode(config, 'e', padding.padEnd(config.payloadBytes, 'y'))
    let running = true
    for (const ws of sockets) {
      let sentAt = 0
      ws.onMessage = (payload) => {
        if (config.socketIo && answerSocketIoPing(ws, payload)) return
        if (measuring) {
          histogram.record(performance.now() - sentAt)
          ops++
        }
        if (!running) return
        sentAt = performance.now()
        ws.send(message)
      }
      sentAt = performance.now()
      ws.send(message)
    }
    const { durationMs, loadCpu } = await measureWindow(config, (on) => {
      measuring = on
    })
    running = false
    for (const ws of sockets) ws.close()
    return {
      ops,
      durationMs,
      p50: histogram.percentile(0.5),
      p99: histogram.percentile(0.99),
      extra: { loadCpu },
    }
  }

  // Fan-out: the first connection publishes `#seq#…`; every connection (itself included)
  // receives it. A new publish goes out whenever fewer than `window` are still being delivered.
  const tracker = new FanoutTracker(histogram, sockets.length)
  let seq = 0
  let running = true
  const publisher = sockets[0]!
  const publish = (): void => {
    seq++
    tracker.sent(seq)
    publisher.send(encode(config, 'b', `#${String(seq).padStart(6, '0')}#${padding}`))
  }
  for (const ws of sockets) {
    let received = 0
    ws.onMessage = (payload, compressed) => {
      if (config.socketIo && answerSocketIoPing(ws, payload)) return
      received++
      const at = payload.indexOf(0x23)
      const id = compressed ? received : Number(payload.toString('latin1', at + 1, at + 7))
      if (tracker.delivered(id) && running) publish()
    }
  }
  for (let i = 0; i < (config.window ?? 4); i++) publish()
  const { durationMs, loadCpu } = await measureWindow(config, (on) => {
    tracker.measuring = on
  })
  running = false
  for (const ws of sockets) ws.close()
  return {
    ops: tracker.deliveries,
    durationMs,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    extra: { loadCpu },
  }
})
