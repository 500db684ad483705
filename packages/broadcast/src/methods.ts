// RPC: methods registered on the hub, called by clients with `{"type":"call"}`, each with the
// Standard Schemas of its input and output (the contract's, or a schema of its own) and a timeout.
import type { AnyContract, MethodSpec, StandardSchemaV1 } from '@flumen/contract'
import type { Peer } from '@flumen/core'
import { FlumenError, positiveInteger } from '@flumen/core'
import { validated } from './access.js'
import type { Observers } from './observers.js'

/** Context of a method handler. */
export interface CallContext<User = unknown> {
  readonly user: User
  readonly peer: Peer<User>
}

export interface MethodOptions<Schema extends StandardSchemaV1 | undefined> {
  /**
   * Validates (and may transform) `data` before the handler runs; failure → BAD_REQUEST. Not with
   * a contract: its `input` is the method's schema.
   */
  schema?: Schema
  /** @default the hub's callTimeoutMs */
  timeoutMs?: number
}

export type MethodHandler<User> = (data: unknown, context: CallContext<User>) => unknown

interface Method<User> {
  readonly handler: MethodHandler<User>
  readonly input: StandardSchemaV1 | undefined
  readonly output: StandardSchemaV1 | undefined
  readonly timeoutMs: number
}

export class Methods<User> {
  private readonly methods = new Map<string, Method<User>>()

  constructor(
    private readonly defaultTimeoutMs: number,
    private readonly contract: AnyContract | undefined,
    private readonly observers: Observers,
    /** Whether a plugin owns the name (`hub.own`): its methods need not be the contract's. */
    private readonly owned: (name: string) => boolean = () => false,
  ) {}

  register(
    name: string,
    handler: MethodHandler<User>,
    options: MethodOptions<StandardSchemaV1 | undefined>,
  ): void {
    if (typeof name !== 'string' || name.length === 0)
      throw new Error('hub.method: name must be a non-empty string')
    if (typeof handler !== 'function') throw new Error('hub.method: handler must be a function')
    if (this.methods.has(name)) throw new Error(`hub.method: ${name} is already registered`)
    const declared: Readonly<Record<string, MethodSpec>> = this.contract?.methods ?? {}
    const spec = Object.hasOwn(declared, name) ? declared[name] : undefined
    if (this.contract && !spec && !this.owned(name))
      throw new Error(`hub.method: ${name} is not a method of the contract`)
    if (spec && options.schema) throw new Error(`hub.method: the contract gives ${name} its schema`)
    this.methods.set(name, {
      handler,
      input: spec?.input ?? options.schema,
      output: spec?.output,
      timeoutMs: positiveInteger('hub.method', 'timeoutMs', options.timeoutMs ?? this.defaultTimeoutMs),
    })
  }

  /** Runs the method; resolves with its result as JSON text. */
  call(name: string, data: unknown, context: CallContext<User>): Promise<string> {
    const method = this.methods.get(name)
    if (!method) return Promise.reject(new FlumenError('NOT_FOUND', `Unknown method ${name}`))
    return this.observers.timed(
      { kind: 'call', method: name },
      () => this.run(name, method, data, context),
      (durationMs, _result, error) =>
        this.observers.call({ method: name, durationMs, ...(error !== undefined && { error }) }),
    )
  }

  private async run(
    name: string,
    method: Method<User>,
    data: unknown,
    context: CallContext<User>,
  ): Promise<string> {
    const input = method.input
      ? await validated(method.input, data, 'BAD_REQUEST', `Invalid input to ${name}`)
      : data
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FlumenError('TIMEOUT', `${name} took longer than ${method.timeoutMs} ms`)),
        method.timeoutMs,
      )
    })
    try {
      const result = (await Promise.race([Promise.resolve(method.handler(input, context)), timeout])) ?? null
      // The handler's result breaking the contract is the server's fault, not the caller's.
      if (method.output) await validated(method.output, result, 'INTERNAL', `${name} returned`)
      return JSON.stringify(result)
    } finally {
      clearTimeout(timer)
    }
  }
}
