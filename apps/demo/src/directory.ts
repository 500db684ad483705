// The room directory: a room is listed (a stored `directory` message) with its first message, and
// every few seconds who is in the listed rooms goes out as a volatile `occupancy` tick. Every node
// reads the listings of the others from the topic's history, so the directory is the same on all.
import type { Hub, StreamPosition } from '@flumen/broadcast'
import { recentMessages } from '@flumen/broadcast'
import type { FlumenPlugin } from '@flumen/core'
import type { Contract, DirectoryEvent } from './contract.js'

/** Rooms kept in the directory (the most recently active first go out when there are more). */
const maxListedRooms = 500
/** Rooms whose occupancy each tick reports: the most recently active. */
const maxReportedRooms = 50
const occupancyIntervalMs = 3000

export interface RoomListing {
  name: string
  /** Users in the room now (a user with two tabs counts once). */
  users: number
}

export interface RoomDirectory extends FlumenPlugin {
  /** A message went to `room`: lists the room if it is new, and counts it for the dashboard. */
  count(room: string): void
  /** The listed rooms, the most recently active first, with who is in them now. */
  listing(): Promise<RoomListing[]>
  /** Messages per room since the last call (the dashboard's per-room rates). */
  takeActivity(): Record<string, number>
}

export const directoryOf = (
  hub: Pick<Hub<unknown, Contract>, 'engine' | 'publish' | 'presenceStats'>,
  namePattern: RegExp,
): RoomDirectory => {
  /** Listed rooms, the least recently active first (a Map keeps insertion order). */
  const rooms = new Map<string, number>()
  let activity = new Map<string, number>()
  let position: StreamPosition | undefined
  let timer: NodeJS.Timeout | undefined

  const touch = (name: string, at: number): void => {
    rooms.delete(name)
    rooms.set(name, at)
    if (rooms.size > maxListedRooms) rooms.delete(rooms.keys().next().value!)
  }

  /** Reads the listings published since the last read (by any node). */
  const refresh = async (): Promise<void> => {
    if (position) {
      const since = await hub.engine.history('directory', position)
      if (since.recovered) {
        position = since.position
        for (const message of since.messages) listed(JSON.parse(message.data) as DirectoryEvent)
        return
      }
    }
    // First read, or the history moved on (another epoch, or past our position): what it holds.
    const recent = await recentMessages(hub.engine, 'directory', maxListedRooms)
    position = recent.position
    for (const message of recent.messages) listed(JSON.parse(message.data) as DirectoryEvent)
  }
  const listed = (event: DirectoryEvent): void => {
    if (event.type === 'room' && namePattern.test(event.name) && !rooms.has(event.name))
      touch(event.name, event.at)
  }

  const recentRooms = (count: number): string[] => [...rooms.keys()].reverse().slice(0, count)
  const occupancy = async (names: string[]): Promise<Record<string, number>> => {
    const counts = await Promise.all(names.map((name) => hub.presenceStats(`room:${name}`)))
    return Object.fromEntries(names.map((name, i) => [name, counts[i]!.users]))
  }

  const tick = async (): Promise<void> => {
    await refresh()
    if (rooms.size === 0) return
    const names = recentRooms(maxReportedRooms)
    await hub.publish(
      'directory',
      { type: 'occupancy', rooms: await occupancy(names), at: Date.now() },
      { volatile: true },
    )
  }

  return {
    name: 'rooms-directory',
    start: () => {
      timer = setInterval(() => void tick().catch(() => {}), occupancyIntervalMs)
      timer.unref()
      void refresh().catch(() => {})
    },
    stop: () => clearInterval(timer),
    count(room) {
      activity.set(room, (activity.get(room) ?? 0) + 1)
      const known = rooms.has(room)
      touch(room, Date.now())
      if (!known) void hub.publish('directory', { type: 'room', name: room, at: Date.now() }).catch(() => {})
    },
    async listing() {
      await refresh()
      const names = recentRooms(maxListedRooms)
      const counts = await occupancy(names.slice(0, maxReportedRooms))
      return names.map((name) => ({ name, users: counts[name] ?? 0 }))
    },
    takeActivity() {
      const taken = Object.fromEntries(activity)
      activity = new Map()
      return taken
    },
  }
}
