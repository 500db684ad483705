// WebSocket load: echo (messages/s and round-trip latency), fan-out (deliveries/s and
// publish-to-delivery latency) and idle (connections held while the server's memory is read).

import { SignJWT } from 'jose'
import { Histogram } from './histogram.js'
import type { LoadResult } from './protocol.js'
import { checkpoint, FanoutTracker, loadCpuPercent, measureWindow, notify, runLoad } from './protocol.js'
import { answerSocketIoPing, RawWebSocket, socketIoConnect } from './raw-ws.js'

export interface WsLoadConfig {
  port: number
  mode: 'echo' | 'fanout' | 'idle' | 'storm'
  /** Speak Socket.IO's framing instead of plain messages. */
  socketIo: boolean
  /** Speak Flumen protocol v1: subscribe to `bench` first, publish with `echo`. */
  flumen?: boolean
  connections: number
  warmupMs: number
  durationMs: number
  /** Publishes in flight at once (fan-out). */
  window?: number
  /**
   * Echo at a fixed pace: every `pacedMs` each connection that has its answer sends the next one
   * (at most 1000/pacedMs per connection). Servers then do the same work per second, so their CPU
   * per message compares without the load generator's speed in it.
   */
  pacedMs?: number
  payloadBytes: number
  path?: string
  /** More server ports (other nodes): connections are spread over `port` and these, in turn. */
  morePorts?: number[]
  /**
   * Offer permessage-deflate (no context takeover) and publish text that compresses like prose:
   * compressed deliveries are counted in order (each client's n-th message is publish n), not inflated.
   */
  deflate?: boolean
  /** Storm: sign a JWT with this secret and send it as `?access_token=` (the auth variant). */
  jwtSecret?: string
  /** Storm: messages published while the clients are away, recovered on reconnect. */
  missed?: number
  /** Storm: storms one after the other in the measured window (drops and publishes between them count). */
  rounds?: number
  /**
   * Fan-out of a ~10 KB state document (a few fields change per publish) instead of text; each
   * client's n-th message is publish n. Reports bytes per delivery.
   */
  stateDocument?: boolean
  /** Subscribe with `"delta":"fossil"` (the hub sends deltas against the previous message). */
  delta?: boolean
  /** Publish with `"volatile":true` (delivered to who is there, stored nowhere). */
  volatile?: boolean
}

const subscribeFlumen = (config: WsLoadConfig, ws: RawWebSocket): Promise<RawWebSocket> =>
  new Promise((resolve) => {
    ws.onMessage = (payload) => {
      if (payload.includes('"ack"')) resolve(ws)
    }
    ws.send(
      Buffer.from(`{"type":"subscribe","id":1,"topic":"bench"${config.delta ? ',"delta":"fossil"' : ''}}`),
    )
  })

/** Version `version` of a board of 120 tasks (~10 KB of JSON): four fields change per version. */
const stateDocument = (version: number): string =>
  JSON.stringify({
    board: 'release-train',
    version,
    tasks: Array.from({ length: 120 }, (_, i) => ({
      id: i,
      title: `Task ${i}: ship the thing`,
      owner: ['alice', 'bob', 'carol'][i % 3],
      done: i < version % 120,
      points: (i * 7 + (i % 60 === version % 60 ? version : 0)) % 100,
    })),
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
            ? RawWebSocket.connect(portFor(config, i + j), '/', i + j, config.deflate).then((ws) =>
                subscribeFlumen(config, ws),
              )
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
        ? `{"type":"publish","topic":"bench","data":"${text}","echo":true${config.volatile ? ',"volatile":true' : ''}}`
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

/** Sends a subscribe to `bench` (from `since`) and resolves with the ack's position once it came. */
const subscribeFrom = (
  ws: RawWebSocket,
  since: { epoch: string; offset: number } | undefined,
  missed: number,
): Promise<{ epoch: string; offset: number; recovered: boolean }> =>
  new Promise((resolve) => {
    let ack: { epoch: string; offset: number; recovered: boolean } | undefined
    let messages = 0
    ws.onMessage = (payload) => {
      const message = JSON.parse(payload.toString()) as {
        type: string
        epoch: string
        offset: number
        recovered: boolean
      }
      if (message.type === 'ack') ack = message
      else if (message.type === 'message') messages++
      // Recovered: the ack, then every message published while away.
      if (ack && (!since || !ack.recovered || messages >= missed)) resolve(ack)
    }
    ws.send(
      Buffer.from(JSON.stringify({ type: 'subscribe', id: 1, topic: 'bench', ...(since && { since }) })),
    )
  })

/**
 * Reconnect storm: every client connected (and subscribed) drops at once; `missed` messages are
 * published meanwhile; then all reconnect together, each subscribing from where it stood. The
 * window is from the first reconnect to the last client recovered (raw ws: the last one open);
 * with `rounds`, the storms follow one another and their windows add up.
 */
const storm = async (config: WsLoadConfig): Promise<LoadResult> => {
  // One user per client (the hub caps connections per user), signed before anything is measured.
  const key = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : undefined
  const tokens = await Promise.all(
    Array.from({ length: config.connections + 1 }, (_, i) =>
      key
        ? new SignJWT({ name: `user ${i}` })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject(`bench-user-${i}`)
            .setExpirationTime('1h')
            .sign(key)
        : undefined,
    ),
  )
  const missed = config.flumen ? (config.missed ?? 5) : 0
  const connectOne = async (i: number): Promise<RawWebSocket> =>
    RawWebSocket.connect(config.port, tokens[i] ? `/?access_token=${tokens[i]}` : '/', i)
  const positions: ({ epoch: string; offset: number } | undefined)[] = []
  for (let i = 0; i < config.connections; i += 200) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(200, config.connections - i) }, async (_, j) => {
        const ws = await connectOne(i + j)
        positions[i + j] = config.flumen ? await subscribeFrom(ws, undefined, 0) : undefined
        return ws
      }),
    )
    for (const ws of opened) ws.close()
  }
  const publishMissed = async (round: number): Promise<void> => {
    if (missed === 0) return
    const publisher = await connectOne(config.connections)
    for (let n = 0; n < missed; n++)
      await new Promise<void>((resolve) => {
        publisher.onMessage = (payload) => payload.includes('"ack"') && resolve()
        publisher.send(
          Buffer.from(`{"type":"publish","id":${n + 1},"topic":"bench","data":"missed ${round}.${n}"}`),
        )
      })
    publisher.close()
  }
  const histogram = new Histogram()
  const rounds = config.rounds ?? 1
  let recovered = 0
  let durationMs = 0
  let again: RawWebSocket[] = []
  await publishMissed(0)
  notify({ type: 'measure-start' })
  const cpuAtStart = process.cpuUsage()
  const windowStart = performance.now()
  for (let round = 0; round < rounds; round++) {
    if (round > 0) {
      for (const ws of again) ws.close()
      await publishMissed(round)
    }
    const started = performance.now()
    again = await Promise.all(
      positions.map(async (since, i) => {
        const ws = await connectOne(i)
        if (config.flumen) {
          const ack = await subscribeFrom(ws, since, missed)
          positions[i] = { epoch: ack.epoch, offset: ack.offset }
          if (ack.recovered) recovered++
        }
        histogram.record(performance.now() - started)
        return ws
      }),
    )
    durationMs += performance.now() - started
  }
  notify({ type: 'measure-end' })
  const loadCpu = loadCpuPercent(cpuAtStart, performance.now() - windowStart)
  for (const ws of again) ws.close()
  return {
    ops: config.connections * rounds,
    durationMs,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    extra: { loadCpu, ...(config.flumen && { recovered }) },
  }
}

runLoad<WsLoadConfig>(async (config) => {
  if (config.mode === 'storm') return storm(config)
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
    const idle = new Set<() => void>()
    for (const ws of sockets) {
      let sentAt = 0
      const send = (): void => {
        sentAt = performance.now()
        ws.send(message)
      }
      ws.onMessage = (payload) => {
        if (config.socketIo && answerSocketIoPing(ws, payload)) return
        if (measuring) {
          histogram.record(performance.now() - sentAt)
          ops++
        }
        if (!running) return
        if (config.pacedMs) idle.add(send)
        else send()
      }
      send()
    }
    const pace = config.pacedMs
      ? setInterval(() => {
          for (const send of idle) send()
          idle.clear()
        }, config.pacedMs)
      : undefined
    const { durationMs, loadCpu } = await measureWindow(config, (on) => {
      measuring = on
    })
    running = false
    clearInterval(pace)
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
  let bytes = 0
  const publish = (): void => {
    seq++
    tracker.sent(seq)
    publisher.send(
      config.stateDocument
        ? Buffer.from(`{"type":"publish","topic":"bench","data":${stateDocument(seq)},"echo":true}`)
        : encode(config, 'b', `#${String(seq).padStart(6, '0')}#${padding}`),
    )
  }
  const messageStart = Buffer.from('{"type":"message"')
  for (const ws of sockets) {
    let received = 0
    ws.onMessage = (payload, compressed) => {
      if (config.socketIo && answerSocketIoPing(ws, payload)) return
      if (config.stateDocument) {
        if (payload.compare(messageStart, 0, messageStart.length, 0, messageStart.length) !== 0) return
        if (tracker.measuring) bytes += payload.length
      }
      received++
      const at = payload.indexOf(0x23)
      const id =
        compressed || config.stateDocument ? received : Number(payload.toString('latin1', at + 1, at + 7))
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
    extra: {
      loadCpu,
      ...(config.stateDocument && { bytesPerDelivery: bytes / Math.max(1, tracker.deliveries) }),
    },
  }
})
