// Chromium for browser tests: where it is, whether a test may run without it, and how it starts on
// this kind of machine (headless, no sandbox as root, no background networking: the network is closed
// and Chromium's own connections would be refused by the dozen).
import { existsSync } from 'node:fs'
import type { Browser } from 'playwright-core'
import { chromium } from 'playwright-core'

export const chromiumPath: string = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Whether Chromium is installed. Without it, CI fails at once (the tests must run there); locally
 * `what` is skipped with a loud warning. Use as `describe.skipIf(!requireChromium('…'))`.
 */
export const requireChromium = (what: string): boolean => {
  if (existsSync(chromiumPath)) return true
  const message = `Chromium not found at ${chromiumPath}: apt-get install -y chromium`
  if (process.env.CI) throw new Error(`${message} (required in CI)`)
  console.warn(`\n\n!!! SKIPPING ${what} !!!\n${message}\n\n`)
  return false
}

/** Starts headless Chromium; playwright-core gives every launch a fresh, temporary profile. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
