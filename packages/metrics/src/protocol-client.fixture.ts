// A protocol-v1 test client over a real `ws` socket, for this package's tests.
import { once } from 'node:events'
import { expect } from 'vitest'
import WebSocket from 'ws'

export interface ProtocolClient {
  /** Every message received, in order. */
  readonly received: Record<string, unknown>[]
  send(message: object): void
  /** Sends `message` and resolves with the answer carrying its id. */
  request(message: { id: number } & Record<string, unknown>): Promise<Record<string, unknown>>
}

/** Opens `ws://<host>/ws` with `flumen.v1`; the socket is added to `sockets` for the test to close. */
export const connectClient = async (host: string, sockets: WebSocket[]): Promise<ProtocolClient> => {
  const socket = new WebSocket(`ws://${host}/ws`, 'flumen.v1')
  sockets.push(socket)
  const received: Record<string, unknown>[] = []
  socket.on('message', (data: Buffer) => received.push(JSON.parse(data.toString())))
  await once(socket, 'open')
  const send = (message: object): void => socket.send(JSON.stringify(message))
  return {
    received,
    send,
    request: async (message) => {
      send(message)
      await expect.poll(() => received.find((m) => m.id === message.id), { timeout: 5_000 }).toBeDefined()
      return received.find((m) => m.id === message.id)!
    },
  }
}
