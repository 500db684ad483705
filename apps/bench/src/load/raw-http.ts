// A lean keep-alive HTTP/1.1 client over net: one request in flight per connection, responses
// framed by Content-Length (or chunked), nothing parsed beyond that.

import type { Socket } from 'node:net'
import { connect } from 'node:net'
import { localAddress } from './protocol.js'

export interface RawResponse {
  status: number
  body: Buffer
}

export class RawHttpConnection {
  private pending: Buffer | undefined
  private waiting: { resolve: (response: RawResponse) => void; reject: (err: Error) => void } | undefined

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk))
    // A server that closes or dies mid-request must fail the run, not leave it waiting forever.
    const fail = (err?: Error): void => {
      const waiting = this.waiting
      this.waiting = undefined
      waiting?.reject(err ?? new Error('connection closed before the response'))
    }
    socket.on('error', fail)
    socket.on('close', () => fail())
  }

  static open(port: number, index: number): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: localAddress(index) }, () =>
        resolve(new RawHttpConnection(socket)),
      )
      socket.setNoDelay(true)
      socket.once('error', reject)
    })
  }

  /** Sends a request (already serialized) and resolves with the response. */
  request(head: string | Buffer, body?: Buffer): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject }
      this.socket.write(head)
      if (body) this.socket.write(body)
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private receive(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk
    this.pending = undefined
    const headEnd = buf.indexOf('\r\n\r\n')
    if (headEnd === -1) {
      this.pending = buf
      return
    }
    const head = buf.toString('latin1', 0, headEnd)
    const status = Number(head.slice(9, 12))
    const lengthMatch = /\r\ncontent-length: *(\d+)/i.exec(head)
    const bodyStart = headEnd + 4
    let body: Buffer
    let end: number
    if (lengthMatch) {
      end = bodyStart + Number(lengthMatch[1])
      if (buf.length < end) {
        this.pending = buf
        return
      }
      body = buf.subarray(bodyStart, end)
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      const last = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2)
      if (last === -1) {
        this.pending = buf
        return
      }
      end = last + 7
      body = Buffer.alloc(0) // chunked bodies are only waited for, not decoded
    } else {
      end = bodyStart
      body = Buffer.alloc(0)
    }
    if (end < buf.length) this.pending = buf.subarray(end)
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.resolve({ status, body })
  }
}

export const getRequest = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
