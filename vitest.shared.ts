// Tests run against the sources of every workspace package, never a stale dist/:
// `@flumen/x` resolves to packages/x/src/index.ts.
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url))

export const sourceAliases: Record<string, string> = Object.fromEntries(
  readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== 'create-flumen')
    .map((entry) => [`@flumen/${entry.name}`, `${packagesDir}${entry.name}/src/index.ts`]),
)
