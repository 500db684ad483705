// A small SSE reader over node:http for the tests: parses events, exposes the raw stream.

import type { IncomingMessage } from 'node:http'
import { request } from 'node:http'

export interface ReceivedEvent {
  event: string
  data: string
  id: string | undefined
}

export interface TestSseClient {
  response: IncomingMessage
  events: ReceivedEvent[]
  comments: string[]
  retry: number | undefined
  next(match?: (event: ReceivedEvent) => boolean, timeoutMs?: number): Promise<ReceivedEvent>
  readonly closed: Promise<void>
  close(): void
}

/** Opens `url`; resolves once the response head arrived (any status). */
export const openSse = (url: string, headers: Record<string, string> = {}): Promise<TestSseClient> =>
  new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } })
    req.on('error', reject)
    req.on('response', (response) => {
      const events: ReceivedEvent[] = []
      const comments: string[] = []
      const taken = new Set<ReceivedEvent>()
      const waiters: (() => void)[] = []
      let buffer = ''
      const client: TestSseClient = {
        response,
        events,
        comments,
        retry: undefined,
        closed: new Promise((done) => {
          response.on('close', () => done())
          response.on('error', () => done())
        }),
        close: () => req.destroy(),
        next: (match = () => true, timeoutMs = 5_000) =>
          new Promise((done, fail) => {
            const timer = setTimeout(
              () => fail(new Error(`no matching event; got ${JSON.stringify(events.slice(-3))}`)),
              timeoutMs,
            )
            const look = (): void => {
              const found = events.find((e) => !taken.has(e) && match(e))
              if (found) {
                taken.add(found)
                clearTimeout(timer)
                done(found)
              } else waiters.push(look)
            }
            look()
          }),
      }
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffer += chunk
        let end = buffer.indexOf('\n\n')
        while (end !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event: ReceivedEvent = { event: 'message', data: '', id: undefined }
          const data: string[] = []
          let isEvent = false
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim())
            else if (line.startsWith('retry: ')) client.retry = Number(line.slice(7))
            else if (line.startsWith('data: ')) {
              data.push(line.slice(6))
              isEvent = true
            } else if (line.startsWith('event: ')) event.event = line.slice(7)
            else if (line.startsWith('id: ')) event.id = line.slice(4)
          }
          if (isEvent) {
            event.data = data.join('\n')
            events.push(event)
          }
          end = buffer.indexOf('\n\n')
        }
        for (const waiter of waiters.splice(0)) waiter()
      })
      resolve(client)
    })
    req.end()
  })
