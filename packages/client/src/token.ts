// Tokens: given, or fetched from the app before every connection, and refreshed on a live socket
// (`{"type":"auth"}`) before a JWT expires.

/** A token, or a function giving a fresh one (called before every connect and before expiry). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>)

export const resolveToken = async (source: TokenSource | undefined): Promise<string | undefined> =>
  typeof source === 'function' ? ((await source()) ?? undefined) : source

/** `exp` of a JWT in ms, or undefined for anything else. */
export const jwtExpiry = (token: string): number | undefined => {
  const payload = token.split('.')[1]
  if (!payload) return undefined
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const json = JSON.parse(atob(base64)) as { exp?: unknown }
    return typeof json.exp === 'number' ? json.exp * 1000 : undefined
  } catch {
    return undefined
  }
}
