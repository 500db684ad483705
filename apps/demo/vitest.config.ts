import { fileURLToPath } from 'node:url'
import { defineProject } from 'vitest/config'
import { sourceAliases } from '../../vitest.shared.js'

export default defineProject({
  resolve: {
    // Tests run under Node: @flumen/client is its Node build here, as its "node" export condition
    // gives it to an installed copy of the app.
    alias: [
      {
        find: /^@flumen\/client$/,
        replacement: fileURLToPath(new URL('../../packages/client/src/node.ts', import.meta.url)),
      },
      ...sourceAliases,
    ],
  },
  test: { name: 'demo', testTimeout: 20_000 },
})
