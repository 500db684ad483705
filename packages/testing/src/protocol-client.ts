// A protocol-v1 client as a test (or an attacker) writes one: raw JSON over a real `ws` socket, each
// request answered by the reply that carries its id.
import { once } from 'node:events'
import WebSocket from 'ws'

type Json = Record<string, unknown>

export interface ProtocolClient {
  readonly socket: WebSocket
  /** Every message received, in order. */
  readonly received: Json[]
  /** Sends `message` as it is (no reply awaited). */
  send(message: Json): void
  /** Sends `message` with its `id` (a fresh one without); resolves with the reply that carries it. */
  request(message: Json, timeoutMs?: number): Promise<Json>
  /** Terminates the socket. */
  close(): void
}

/** Opens a WebSocket with the `flumen.v1` subprotocol (or `protocols`) and resolves once it is open. */
export const openProtocolClient = async (
  url: string,
  protocols: string[] = ['flumen.v1'],
): Promise<ProtocolClient> => {
  const socket = new WebSocket(url, protocols)
  const received: Json[] = []
  const waiting = new Map<unknown, (reply: Json) => void>()
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as Json
    received.push(message)
    waiting.get(message.id)?.(message)
  })
  socket.on('error', () => {}) // a refused or reset socket shows in the test's own checks
  await once(socket, 'open')
  let nextId = 1
  return {
    socket,
    received,
    send: (message) => socket.send(JSON.stringify(message)),
    request: (message, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const id = message.id ?? nextId++
        const timer = setTimeout(() => {
          waiting.delete(id)
          reject(new Error(`no reply to ${JSON.stringify(message).slice(0, 200)}`))
        }, timeoutMs)
        waiting.set(id, (reply) => {
          waiting.delete(id)
          clearTimeout(timer)
          resolve(reply)
        })
        socket.send(JSON.stringify({ ...message, id }))
      }),
    close: () => socket.terminate(),
  }
}
