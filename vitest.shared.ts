// Tests run against the sources of every workspace package, never a stale dist/:
// `@flumen/x` resolves to packages/x/src/index.ts and `@flumen/x/y` to packages/x/src/y.ts.
import { fileURLToPath } from 'node:url'

const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url))

export const sourceAliases: { find: RegExp; replacement: string }[] = [
  { find: /^@flumen\/([a-z-]+)$/, replacement: `${packagesDir}$1/src/index.ts` },
  { find: /^@flumen\/([a-z-]+)\/([a-z-]+)$/, replacement: `${packagesDir}$1/src/$2.ts` },
]

/**
 * Type tests: `src/**\/*.test-d.ts` files, checked by tsc with the package's tsconfig in the same
 * `vitest run` as the other tests (`expectTypeOf`, `@ts-expect-error`).
 */
export const typeTests: { enabled: true; include: string[]; tsconfig: string } = {
  enabled: true,
  include: ['src/**/*.test-d.ts'],
  tsconfig: './tsconfig.json',
}
