// RPC: methods registered on the hub, called by clients with `{"type":"call"}`, each with an
// optional Standard Schema for its data and a timeout.
import type { Peer } from '@flumen/core'
import { FlumenError, positiveInteger } from '@flumen/core'
import type { StandardSchemaV1 } from './schema.js'
import { validate } from './schema.js'

/** Context of a method handler. */
export interface CallContext<User = unknown> {
  readonly user: User
  readonly peer: Peer<User>
}

export interface MethodOptions<Schema extends StandardSchemaV1 | undefined> {
  /** Validates (and may transform) `data` before the handler runs; failure → BAD_REQUEST. */
  schema?: Schema
  /** @default the hub's callTimeoutMs */
  timeoutMs?: number
}

export type MethodHandler<User> = (data: unknown, context: CallContext<User>) => unknown

interface Method<User> {
  readonly handler: MethodHandler<User>
  readonly schema: StandardSchemaV1 | undefined
  readonly timeoutMs: number
}

export class Methods<User> {
  private readonly methods = new Map<string, Method<User>>()

  constructor(private readonly defaultTimeoutMs: number) {}

  register(
    name: string,
    handler: MethodHandler<User>,
    options: MethodOptions<StandardSchemaV1 | undefined>,
  ): void {
    if (typeof name !== 'string' || name.length === 0)
      throw new Error('hub.method: name must be a non-empty string')
    if (typeof handler !== 'function') throw new Error('hub.method: handler must be a function')
    if (this.methods.has(name)) throw new Error(`hub.method: ${name} is already registered`)
    this.methods.set(name, {
      handler,
      schema: options.schema,
      timeoutMs: positiveInteger('hub.method', 'timeoutMs', options.timeoutMs ?? this.defaultTimeoutMs),
    })
  }

  /** Runs the method; resolves with its result as JSON text. */
  async call(name: string, data: unknown, context: CallContext<User>): Promise<string> {
    const method = this.methods.get(name)
    if (!method) throw new FlumenError('NOT_FOUND', `Unknown method ${name}`)
    let input = data
    if (method.schema) {
      const result = await validate(method.schema, input)
      if (!result.ok) throw new FlumenError('BAD_REQUEST', result.message)
      input = result.value
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FlumenError('TIMEOUT', `${name} took longer than ${method.timeoutMs} ms`)),
        method.timeoutMs,
      )
    })
    try {
      const result = await Promise.race([Promise.resolve(method.handler(input, context)), timeout])
      return JSON.stringify(result ?? null)
    } finally {
      clearTimeout(timer)
    }
  }
}
