import { defineProject } from 'vitest/config'
import { sourceAliases, typeTests } from '../../vitest.shared.js'

export default defineProject({
  resolve: { alias: sourceAliases },
  test: { name: 'client', testTimeout: 20_000, typecheck: typeTests },
})
