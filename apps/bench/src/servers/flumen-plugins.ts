// Installs every Flumen package that exists the way the demo app does, for the
// "flumen-all" rows: a plain route must not pay for the plugins beside it.
import type { FlumenEnv, FlumenPlugin } from '@flumen/core'
import type { Hono } from 'hono'

export const installAll = (_app: Hono<FlumenEnv>): FlumenPlugin[] => {
  // No plugin package exists yet (@flumen/core only); later issues add theirs here.
  return []
}
