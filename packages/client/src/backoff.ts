export interface BackoffOptions {
  /**
   * First delay bound.
   * @default 500
   */
  baseDelayMs?: number
  /**
   * Largest delay bound.
   * @default 20000
   */
  maxDelayMs?: number
  /**
   * Random source in [0, 1) (inject a seeded one in tests).
   * @default Math.random
   */
  random?: () => number
}

/**
 * Full-jitter exponential backoff: attempt n waits a uniform random time in
 * [0, min(maxDelayMs, baseDelayMs · 2ⁿ)). Spreads reconnecting clients instead of synchronising them.
 */
export const fullJitter = (options: BackoffOptions = {}): ((attempt: number) => number) => {
  const base = options.baseDelayMs ?? 500
  const max = options.maxDelayMs ?? 20_000
  const random = options.random ?? Math.random
  if (!(base > 0) || !(max >= base)) throw new Error('fullJitter: need 0 < baseDelayMs <= maxDelayMs')
  return (attempt) => Math.floor(random() * Math.min(max, base * 2 ** Math.min(attempt, 30)))
}
