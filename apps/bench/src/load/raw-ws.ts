// A lean WebSocket client over net: a fixed handshake, frames built by hand with a zero mask,
// and an incremental frame parser. It costs less CPU per message than the servers it loads.

import type { Socket } from 'node:net'
import { connect } from 'node:net'
import { localAddress } from './protocol.js'

const zeroMask = Buffer.alloc(4)

export const frame = (payload: Buffer, opcode = 0x1): Buffer => {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const out = Buffer.allocUnsafe(headerLength + 4 + length)
  out[0] = 0x80 | opcode
  if (length < 126) {
    out[1] = 0x80 | length
  } else if (length < 65536) {
    out[1] = 0x80 | 126
    out.writeUInt16BE(length, 2)
  } else {
    out[1] = 0x80 | 127
    out.writeBigUInt64BE(BigInt(length), 2)
  }
  zeroMask.copy(out, headerLength)
  payload.copy(out, headerLength + 4)
  return out
}

/** A message's payload, and whether it came compressed (RSV1, permessage-deflate: not inflated here). */
export type MessageHandler = (payload: Buffer, compressed: boolean) => void

export class RawWebSocket {
  private handler: MessageHandler | undefined
  // Messages that arrive with the 101 come before anyone could set a handler: keep them.
  private early: [Buffer, boolean][] = []
  private pending: Buffer | undefined

  set onMessage(handler: MessageHandler) {
    this.handler = handler
    for (const [payload, compressed] of this.early.splice(0)) handler(payload, compressed)
  }

  private constructor(readonly socket: Socket) {}

  /** `deflate` offers permessage-deflate with no context takeover (each message compressed alone). */
  static connect(port: number, path: string, index: number, deflate = false): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: localAddress(index) })
      socket.setNoDelay(true)
      let head = ''
      const onData = (chunk: Buffer): void => {
        head += chunk.toString('latin1')
        const end = head.indexOf('\r\n\r\n')
        if (end === -1) return
        socket.off('data', onData)
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy()
          reject(new Error(`upgrade refused: ${head.slice(0, head.indexOf('\r\n'))}`))
          return
        }
        const ws = new RawWebSocket(socket)
        const rest = Buffer.from(head.slice(end + 4), 'latin1')
        socket.on('data', (data: Buffer) => ws.receive(data))
        resolve(ws)
        if (rest.length > 0) ws.receive(rest)
      }
      socket.on('data', onData)
      socket.once('error', reject)
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          (deflate
            ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n'
            : '') +
          '\r\n',
      )
    })
  }

  send(payload: Buffer): void {
    this.socket.write(frame(payload))
  }

  close(): void {
    this.socket.destroy()
  }

  private receive(data: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, data]) : data
    this.pending = undefined
    let offset = 0
    while (buf.length - offset >= 2) {
      const opcode = buf[offset]! & 0x0f
      const compressed = (buf[offset]! & 0x40) !== 0
      let length = buf[offset + 1]! & 0x7f
      let start = offset + 2
      if (length === 126) {
        if (buf.length - offset < 4) break
        length = buf.readUInt16BE(offset + 2)
        start = offset + 4
      } else if (length === 127) {
        if (buf.length - offset < 10) break
        length = Number(buf.readBigUInt64BE(offset + 2))
        start = offset + 10
      }
      if (buf.length < start + length) break
      const payload = buf.subarray(start, start + length)
      offset = start + length
      if (opcode === 0x9) this.socket.write(frame(Buffer.from(payload), 0xa))
      else if (opcode === 0x1 || opcode === 0x2) {
        if (this.handler) this.handler(payload, compressed)
        else this.early.push([Buffer.from(payload), compressed])
      } else if (opcode === 0x8) this.socket.end()
    }
    if (offset < buf.length) this.pending = buf.subarray(offset)
  }
}

/** Socket.IO's framing over a raw WebSocket: engine.io open, namespace connect, `42[...]` events. */
export const socketIoConnect = async (port: number, index: number): Promise<RawWebSocket> => {
  const ws = await RawWebSocket.connect(port, '/socket.io/?EIO=4&transport=websocket', index)
  await new Promise<void>((resolve) => {
    ws.onMessage = (payload) => {
      const kind = payload.toString('latin1', 0, 2)
      if (kind[0] === '0') ws.send(Buffer.from('40'))
      else if (kind === '40') resolve()
    }
  })
  return ws
}

/** Whether a Socket.IO message is an engine.io ping, answered here with a pong. */
export const answerSocketIoPing = (ws: RawWebSocket, payload: Buffer): boolean => {
  if (payload.length === 1 && payload[0] === 0x32) {
    ws.send(Buffer.from('3'))
    return true
  }
  return false
}
