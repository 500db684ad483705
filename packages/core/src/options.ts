// Option validation shared by every package: factories check their options up front and throw a
// plain Error that names the factory and the option (`uploads: limits.fileSize must be …`).

/** `value` when it is a safe integer ≥ 1, else throws `<owner>: <name> must be a positive integer`. */
export const positiveInteger = (owner: string, name: string, value: number): number => {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${owner}: ${name} must be a positive integer, got ${String(value)}`)
  return value
}

/** `value` when it is a safe integer ≥ `min`, else throws `<owner>: <name> must be an integer >= min`. */
export const integerAtLeast = (owner: string, name: string, value: number, min: number): number => {
  if (!Number.isSafeInteger(value) || value < min)
    throw new Error(`${owner}: ${name} must be an integer >= ${min}, got ${String(value)}`)
  return value
}

/** `value` when it is a finite number ≥ 0, else throws `<owner>: <name> must be a non-negative number`. */
export const nonNegativeNumber = (owner: string, name: string, value: number): number => {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new Error(`${owner}: ${name} must be a non-negative number, got ${String(value)}`)
  return value
}

/** `value` when it is a finite number > 0, else throws `<owner>: <name> must be a positive number`. */
export const positiveNumber = (owner: string, name: string, value: number): number => {
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0))
    throw new Error(`${owner}: ${name} must be a positive number, got ${String(value)}`)
  return value
}

/** Origins a route accepts besides its own: a list of origins, or a function that decides. */
export type AllowedOrigins = readonly string[] | ((origin: string) => boolean)

/**
 * The check of an `allowedOrigins` option: a function is used as it is; a list is validated once
 * (each entry a URL origin such as `https://app.example.com`) and matched exactly.
 */
export const originAllowList = (owner: string, allowed: AllowedOrigins): ((origin: string) => boolean) => {
  if (typeof allowed === 'function') return allowed
  if (!Array.isArray(allowed))
    throw new Error(`${owner}: allowedOrigins must be an array of origins or a function`)
  const origins = new Set<string>()
  for (const origin of allowed) {
    let parsed: URL
    try {
      parsed = new URL(String(origin))
    } catch {
      throw new Error(`${owner}: allowedOrigins has an invalid origin "${String(origin)}"`)
    }
    origins.add(parsed.origin)
  }
  return (origin) => origins.has(origin)
}
