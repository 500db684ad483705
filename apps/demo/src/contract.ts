// What Flumen Rooms' topics carry, for the server (src/app.ts) and the page (public/app.ts) alike:
// both are typed from it and check what they receive against it. Browser-safe: valibot and the
// contract only, no server code.
import type { MessageOf } from '@flumen/contract'
import { defineContract } from '@flumen/contract'
import * as v from 'valibot'

const person = v.object({ id: v.string(), name: v.string() })

const chatMessage = v.object({
  type: v.literal('chat'),
  /** `<user id>:<client id>` when the client named it (a retry is the same message), else random. */
  id: v.string(),
  from: person,
  text: v.pipe(v.string(), v.minLength(1), v.maxLength(2000)),
  at: v.number(),
})

const sharedFile = v.object({
  type: v.literal('file'),
  file: v.object({
    id: v.string(),
    name: v.string(),
    size: v.number(),
    type: v.string(),
    sha256: v.string(),
    url: v.string(),
    uploadId: v.string(),
    from: person,
    at: v.number(),
  }),
})

/** Someone is typing in the room, or stopped (volatile: never stored). */
const typing = v.object({ type: v.literal('typing'), from: person, typing: v.boolean() })

/**
 * A file on its way into the room, as `@flumen/uploads` reports it with who sends it: progress ticks
 * (volatile), then done or failed (stored, so a page that reconnects does not keep a stale row).
 */
const uploadProgress = v.object({
  type: v.literal('upload-progress'),
  uploadId: v.string(),
  from: person,
  received: v.number(),
  total: v.optional(v.number()),
  file: v.optional(v.object({ name: v.string(), bytes: v.number() })),
})
const uploadDone = v.object({
  type: v.literal('upload-done'),
  uploadId: v.string(),
  from: person,
  files: v.array(v.object({ id: v.string() })),
})
const uploadFailed = v.object({
  type: v.literal('upload-failed'),
  uploadId: v.string(),
  from: person,
  error: v.object({ code: v.string(), message: v.string() }),
})

/** A room in the directory: told once, when it gets its first message. */
const roomListed = v.object({ type: v.literal('room'), name: v.string(), at: v.number() })
/** Who is in the listed rooms now (volatile, every few seconds). */
const occupancy = v.object({
  type: v.literal('occupancy'),
  rooms: v.record(v.string(), v.number()),
  at: v.number(),
})

const dashboardTick = v.object({
  /** The node that measured it (one tick per node per second when on Redis). */
  node: v.string(),
  connections: v.object({ ws: v.number(), sse: v.number() }),
  messagesPerSecond: v.number(),
  deliveriesPerSecond: v.number(),
  /** Messages per second of the busiest rooms on this node. */
  rooms: v.record(v.string(), v.number()),
  uploads: v.object({ active: v.number(), completed: v.number(), failed: v.number(), bytes: v.number() }),
  drops: v.number(),
  at: v.number(),
})

export const contract = defineContract({
  topics: {
    'room:{name}': {
      message: v.variant('type', [chatMessage, sharedFile, typing, uploadProgress, uploadDone, uploadFailed]),
      /**
       * What a page sends: a chat line (the server makes the message of it: sender, time, id), or,
       * volatile, whether it is typing.
       */
      publish: v.union([
        v.object({ text: v.string(), id: v.optional(v.string()) }),
        v.object({ typing: v.boolean() }),
      ]),
      presence: person,
    },
    directory: { message: v.variant('type', [roomListed, occupancy]) },
    dashboard: { message: dashboardTick },
  },
})

export type Contract = typeof contract
/** What a room carries: chat messages and shared files (stored), typing and upload progress. */
export type RoomEvent = MessageOf<Contract, `room:${string}`>
export type ChatMessage = Extract<RoomEvent, { type: 'chat' }>
/** What a room shows as its lines: the stored chat messages and files. */
export type RoomLineEvent = Extract<RoomEvent, { type: 'chat' | 'file' }>
export type DirectoryEvent = MessageOf<Contract, 'directory'>
export type DashboardTick = MessageOf<Contract, 'dashboard'>
