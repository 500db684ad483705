// Yjs load: one writer types into the document `bench` (a few characters per update, at random places)
// with a window of updates in flight; N editors receive every update. Counts the updates each editor
// receives (deliveries/s) and the bytes each one took on the wire (payload).
import * as Y from 'yjs'
import { Histogram } from './histogram.js'
import { FanoutTracker, measureWindow, runLoad } from './protocol.js'
import { frame, RawWebSocket } from './raw-ws.js'

export interface YjsLoadConfig {
  port: number
  /** y-websocket's binary protocol, or Flumen's JSON one (`yjs.update` calls, `doc:bench` messages). */
  protocol: 'y-websocket' | 'flumen'
  editors: number
  /** Updates in flight at once (sent, not yet at the first editor). */
  window: number
  warmupMs: number
  durationMs: number
}

/** A writer's next update: a short word typed at a random place of its own text. */
const typist = (): (() => Uint8Array) => {
  const doc = new Y.Doc()
  const text = doc.getText('text')
  let last: Uint8Array | undefined
  doc.on('update', (update: Uint8Array) => {
    last = update
  })
  const words = ['the ', 'notes ', 'of ', 'a ', 'room ', 'typed ', 'at ', 'once ']
  let n = 0
  return () => {
    text.insert(Math.floor(Math.random() * (text.length + 1)), words[n++ % words.length]!)
    return last!
  }
}

/** y-websocket: `[messageSync, messageYjsUpdate, varUint8Array(update)]`. */
const yWebsocketUpdate = (update: Uint8Array): Buffer => {
  const length: number[] = []
  let value = update.length
  while (value > 127) {
    length.push((value & 127) | 128)
    value >>>= 7
  }
  length.push(value)
  return Buffer.concat([Buffer.from([0, 2, ...length]), update])
}

runLoad<YjsLoadConfig>(async (config) => {
  const path = config.protocol === 'flumen' ? '/ws' : '/bench'
  const histogram = new Histogram()
  const tracker = new FanoutTracker(histogram, config.editors)
  let bytes = 0
  let sent = 0
  let atFirst = 0
  const next = typist()
  const writer = await RawWebSocket.connect(config.port, path, 0)
  writer.onMessage = () => {}
  const send = (): void => {
    const update = next()
    tracker.sent(++sent)
    if (config.protocol === 'flumen')
      writer.send(
        Buffer.from(
          `{"type":"call","id":${sent},"method":"yjs.update","data":{"doc":"bench","message":"${Buffer.from(
            yWebsocketUpdate(update).subarray(1),
          ).toString('base64')}"}}`,
        ),
      )
    else writer.socket.write(frame(yWebsocketUpdate(update), 0x2))
  }
  const editors: RawWebSocket[] = []
  for (let i = 0; i < config.editors; i++) {
    const editor = await RawWebSocket.connect(config.port, path, i + 1)
    let received = 0
    const isUpdate =
      config.protocol === 'flumen'
        ? (payload: Buffer): boolean => payload.includes('"data":{"u":')
        : (payload: Buffer): boolean => payload[0] === 0 && payload[1] === 2
    if (config.protocol === 'flumen') {
      await new Promise<void>((resolve) => {
        editor.onMessage = (payload) => {
          if (payload.includes('"ack"')) resolve()
        }
        editor.send(Buffer.from('{"type":"subscribe","id":1,"topic":"doc:bench"}'))
      })
    }
    editor.onMessage = (payload) => {
      if (!isUpdate(payload)) return
      // Each editor gets the updates in the order they were sent: the n-th is update n.
      received++
      if (tracker.measuring) bytes += payload.length
      tracker.delivered(received)
      if (i === 0) {
        atFirst = received
        while (sent - atFirst < config.window) send()
      }
    }
    editors.push(editor)
  }
  for (let i = 0; i < config.window; i++) send()
  const { durationMs, loadCpu } = await measureWindow(config, (on) => {
    tracker.measuring = on
  })
  for (const socket of [writer, ...editors]) socket.close()
  return {
    ops: tracker.deliveries,
    durationMs,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    extra: {
      updatesPerSecond: tracker.deliveries / config.editors / (durationMs / 1000),
      bytesPerDelivery: tracker.deliveries > 0 ? bytes / tracker.deliveries : 0,
      loadCpu,
    },
  }
})
