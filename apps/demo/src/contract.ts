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

/** Upload progress, to the uploader only (`@flumen/uploads` publishes it). */
const uploadEvent = v.variant('type', [
  v.object({
    type: v.literal('upload-progress'),
    uploadId: v.string(),
    received: v.number(),
    total: v.optional(v.number()),
  }),
  v.object({
    type: v.literal('upload-done'),
    uploadId: v.string(),
    files: v.array(v.object({ id: v.string() })),
  }),
  v.object({
    type: v.literal('upload-failed'),
    uploadId: v.string(),
    error: v.object({ code: v.string(), message: v.string() }),
  }),
])

const dashboardTick = v.object({
  connections: v.object({ ws: v.number(), sse: v.number() }),
  messagesPerSecond: v.number(),
  uploads: v.object({ active: v.number(), completed: v.number(), failed: v.number(), bytes: v.number() }),
  drops: v.number(),
  at: v.number(),
})

export const contract = defineContract({
  topics: {
    'room:{name}': {
      message: v.variant('type', [chatMessage, sharedFile]),
      /** What a page sends: the server makes the chat message of it (sender, time, id). */
      publish: v.object({ text: v.string(), id: v.optional(v.string()) }),
      presence: person,
    },
    'user:{id}': { message: uploadEvent },
    dashboard: { message: dashboardTick },
  },
})

export type Contract = typeof contract
/** What a room carries: chat messages and shared files. */
export type RoomEvent = MessageOf<Contract, `room:${string}`>
export type ChatMessage = Extract<RoomEvent, { type: 'chat' }>
export type UploadEvent = MessageOf<Contract, `user:${string}`>
export type DashboardTick = MessageOf<Contract, 'dashboard'>
