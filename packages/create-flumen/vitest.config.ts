import { defineProject } from 'vitest/config'
import { sourceAliases } from '../../vitest.shared.js'

export default defineProject({
  resolve: { alias: sourceAliases },
  // templates/ holds the tests of the apps it creates: they run in those apps.
  test: { name: 'create-flumen', testTimeout: 120_000, exclude: ['templates/**', '**/node_modules/**'] },
})
