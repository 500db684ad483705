// What the demo's dashboard shows, read from the counters the packages keep (the same ones
// @flumen/metrics serves on /metrics): connections by transport, messages in and out, per room,
// drops, uploads. The dashboard topic gets a snapshot of this node every second, volatile (a tick
// nobody saw is worth nothing later).
import type { Hub } from '@flumen/broadcast'
import type { FlumenPlugin } from '@flumen/core'
import { createId } from '@flumen/core'
import type { SseRoute } from '@flumen/sse'
import type { UploadsRoute } from '@flumen/uploads'
import type { WebSocketRoute } from '@flumen/ws'
import type { Contract } from './contract.js'
import type { RoomDirectory } from './directory.js'

export interface LiveSources {
  readonly hub: Pick<Hub<unknown, Contract>, 'stats' | 'publish'>
  readonly wsRoute: Pick<WebSocketRoute, 'stats'>
  readonly sseRoute: Pick<SseRoute, 'stats'>
  /** Every upload route (multipart and tus): the dashboard shows their sums. */
  readonly uploadRoutes: readonly Pick<UploadsRoute, 'stats'>[]
  readonly roomActivity: Pick<RoomDirectory, 'takeActivity'>
}

/** Rooms a tick reports the rate of: the busiest. */
const maxRoomsPerTick = 8

/** The plugin that publishes the dashboard while the server runs. */
export const liveDashboard = ({
  hub,
  wsRoute,
  sseRoute,
  uploadRoutes,
  roomActivity,
}: LiveSources): FlumenPlugin => {
  // Names this node in its ticks: the page charts each node on its own when there are several.
  const node = createId().slice(0, 6)
  let dashboardPublishes = 0
  const connectionCounts = (): { ws: number; sse: number } => ({
    ws: wsRoute.stats.connections,
    sse: sseRoute.stats.connections,
  })
  const dropCount = (): number =>
    wsRoute.stats.dropped +
    wsRoute.stats.slowConsumers +
    sseRoute.stats.dropped +
    sseRoute.stats.slowConsumers
  const messagesIn = (): number => hub.stats.published - dashboardPublishes

  let timer: NodeJS.Timeout | undefined
  let lastIn = 0
  let lastOut = 0
  return {
    name: 'rooms-dashboard',
    start: () => {
      timer = setInterval(() => {
        const now = messagesIn()
        const out = hub.stats.delivered
        const sum = (key: 'active' | 'completed' | 'failed' | 'bytes'): number =>
          uploadRoutes.reduce((total, route) => total + route.stats[key], 0)
        const rooms = Object.entries(roomActivity.takeActivity())
          .sort((a, b) => b[1] - a[1])
          .slice(0, maxRoomsPerTick)
        dashboardPublishes++
        void hub
          .publish(
            'dashboard',
            {
              node,
              connections: connectionCounts(),
              messagesPerSecond: now - lastIn,
              deliveriesPerSecond: out - lastOut,
              rooms: Object.fromEntries(rooms),
              uploads: {
                active: sum('active'),
                completed: sum('completed'),
                failed: sum('failed'),
                bytes: sum('bytes'),
              },
              drops: dropCount(),
              at: Date.now(),
            },
            { volatile: true },
          )
          .catch(() => {})
        lastIn = now
        lastOut = out
      }, 1000)
      timer.unref()
    },
    stop: () => clearInterval(timer),
  }
}
