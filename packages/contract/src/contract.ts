// A contract: the topics (exact names or patterns with `{param}`) and methods of an app, each with
// Standard Schemas, declared once and imported by the server and the page alike.
import type { StandardSchemaV1 } from './schema.js'
import { isStandardSchema } from './schema.js'

/** What a topic carries. */
export interface TopicSpec {
  /** Every message of the topic, as subscribers receive it (checked on publish and on receipt). */
  readonly message: StandardSchemaV1
  /**
   * What a client may publish to it, when that differs from `message` (the server's
   * `beforePublish` makes the message of it).
   * @default message
   */
  readonly publish?: StandardSchemaV1
  /** A member of the topic's presence, as `identify` on the server makes it. */
  readonly presence?: StandardSchemaV1
}

/** A method clients call. */
export interface MethodSpec {
  readonly input: StandardSchemaV1
  readonly output: StandardSchemaV1
}

export interface ContractSpec {
  readonly topics: { readonly [pattern: string]: TopicSpec }
  readonly methods?: { readonly [name: string]: MethodSpec }
}

/** `room:{id}` → `room:${string}`: the topic names a pattern stands for. */
export type TopicOfPattern<P extends string> = P extends `${infer Head}{${string}}${infer Tail}`
  ? `${Head}${string}${TopicOfPattern<Tail>}`
  : P

/** `room:{id}` → `{ id: string }`. */
export type ParamsOfPattern<P extends string> = P extends `${string}{${infer Name}}${infer Tail}`
  ? { [K in Name]: string } & ParamsOfPattern<Tail>
  : unknown

/** A pattern `{param}` matched, with its parameters. */
export interface TopicMatch {
  readonly pattern: string
  readonly spec: TopicSpec
  readonly params: Readonly<Record<string, string>>
}

export interface Contract<S extends ContractSpec = ContractSpec> {
  readonly topics: S['topics']
  readonly methods: S extends { readonly methods?: infer M } ? NonNullable<M> : never
  /**
   * The topic's entry: its exact name first, else the first pattern declared that matches (a
   * parameter matches one or more characters).
   */
  match(topic: string): TopicMatch | undefined
  /** The topic of `pattern` with `params` filled in (`room:{id}`, `{ id: '42' }` → `room:42`). */
  topic<P extends keyof S['topics'] & string>(pattern: P, params: ParamsOfPattern<P>): TopicOfPattern<P>
}

/** Any contract, where one is accepted whatever it declares. */
export type AnyContract = Contract<ContractSpec>

type TopicsOf<C extends AnyContract> = C['topics']
type PatternsOf<C extends AnyContract> = keyof TopicsOf<C> & string

/** Every topic name the contract allows. */
export type TopicName<C extends AnyContract> = { [P in PatternsOf<C>]: TopicOfPattern<P> }[PatternsOf<C>]

/** The patterns a topic name matches (a union when several do). */
export type PatternOf<C extends AnyContract, T extends string> = {
  [P in PatternsOf<C>]: T extends TopicOfPattern<P> ? P : never
}[PatternsOf<C>]

type SpecOf<C extends AnyContract, T extends string> = TopicsOf<C>[PatternOf<C, T>]

/** A message of topic `T` as a subscriber receives it (the schema's output). */
export type MessageOf<C extends AnyContract, T extends string> = StandardSchemaV1.InferOutput<
  SpecOf<C, T>['message']
>

/** What server code passes to `hub.publish` for topic `T` (the message schema's input). */
export type MessageInputOf<C extends AnyContract, T extends string> = StandardSchemaV1.InferInput<
  SpecOf<C, T>['message']
>

/** What a client may publish to topic `T` (the `publish` schema's input, else the message's). */
export type PublishInputOf<C extends AnyContract, T extends string> =
  SpecOf<C, T> extends {
    readonly publish: StandardSchemaV1
  }
    ? StandardSchemaV1.InferInput<SpecOf<C, T>['publish']>
    : MessageInputOf<C, T>

/** A client publish to topic `T` after its schema, as `beforePublish` sees it. */
export type PublishOf<C extends AnyContract, T extends string> =
  SpecOf<C, T> extends {
    readonly publish: StandardSchemaV1
  }
    ? StandardSchemaV1.InferOutput<SpecOf<C, T>['publish']>
    : MessageOf<C, T>

/** A presence member of topic `T`. */
export type PresenceOf<C extends AnyContract, T extends string> =
  SpecOf<C, T> extends {
    readonly presence: StandardSchemaV1
  }
    ? StandardSchemaV1.InferOutput<SpecOf<C, T>['presence']>
    : unknown

export type MethodName<C extends AnyContract> = keyof C['methods'] & string
type MethodSpecOf<C extends AnyContract, N extends MethodName<C>> = C['methods'][N] & MethodSpec
/** What a client sends to method `N` (input schema's input). */
export type MethodInputOf<C extends AnyContract, N extends MethodName<C>> = StandardSchemaV1.InferInput<
  MethodSpecOf<C, N>['input']
>
/** What the server's handler of `N` receives (input schema's output). */
export type MethodArgumentOf<C extends AnyContract, N extends MethodName<C>> = StandardSchemaV1.InferOutput<
  MethodSpecOf<C, N>['input']
>
/** What the handler of `N` returns (output schema's input). */
export type MethodResultOf<C extends AnyContract, N extends MethodName<C>> = StandardSchemaV1.InferInput<
  MethodSpecOf<C, N>['output']
>
/** What a client's `call(N)` resolves with (output schema's output). */
export type MethodOutputOf<C extends AnyContract, N extends MethodName<C>> = StandardSchemaV1.InferOutput<
  MethodSpecOf<C, N>['output']
>

const parameter = /\{([A-Za-z_][\w]*)\}/g
/** Topics whose match is remembered at most. */
const maxMemoized = 4096
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

interface CompiledPattern {
  readonly pattern: string
  readonly spec: TopicSpec
  readonly names: readonly string[]
  readonly regexp: RegExp
}

const compile = (pattern: string, spec: TopicSpec): CompiledPattern => {
  const names: string[] = []
  let source = ''
  let last = 0
  for (const found of pattern.matchAll(parameter)) {
    if (names.includes(found[1]!)) throw new Error(`defineContract: ${pattern} names {${found[1]}} twice`)
    names.push(found[1]!)
    source += `${literal(pattern.slice(last, found.index))}(.+?)`
    last = found.index + found[0].length
  }
  source += literal(pattern.slice(last))
  if (/[{}]/.test(pattern.replace(parameter, '')))
    throw new Error(`defineContract: ${pattern}: parameters are {name} (letters, digits, _)`)
  return { pattern, spec, names, regexp: new RegExp(`^${source}$`) }
}

const checkSchema = (where: string, schema: unknown, required: boolean): void => {
  if (schema === undefined && !required) return
  if (!isStandardSchema(schema))
    throw new Error(`defineContract: ${where} must be a Standard Schema (zod, valibot, arktype…)`)
}

/**
 * Declares an app's topics and methods once, for the server (`createHub({ contract })`) and the
 * client (`createClient({ url, contract })`): both type and validate what they send and receive.
 *
 * ```ts
 * export const contract = defineContract({
 *   topics: { 'room:{id}': { message: ChatMessage, presence: Member }, dashboard: { message: Tick } },
 *   methods: { 'chat.send': { input: SendInput, output: z.object({ offset: z.number() }) } },
 * })
 * ```
 */
export const defineContract = <const S extends ContractSpec>(spec: S): Contract<S> => {
  if (typeof spec?.topics !== 'object' || spec.topics === null)
    throw new Error('defineContract: topics must be an object of topic specs')
  const exact = new Map<string, TopicSpec>()
  const patterns: CompiledPattern[] = []
  for (const [pattern, topic] of Object.entries(spec.topics)) {
    if (pattern.length === 0) throw new Error('defineContract: a topic pattern is empty')
    checkSchema(`topics['${pattern}'].message`, topic?.message, true)
    checkSchema(`topics['${pattern}'].publish`, topic.publish, false)
    checkSchema(`topics['${pattern}'].presence`, topic.presence, false)
    const compiled = compile(pattern, topic)
    if (compiled.names.length === 0) exact.set(pattern, topic)
    else patterns.push(compiled)
  }
  for (const [name, method] of Object.entries(spec.methods ?? {})) {
    checkSchema(`methods['${name}'].input`, method?.input, true)
    checkSchema(`methods['${name}'].output`, method.output, true)
  }
  const byPattern = new Map(patterns.map((compiled) => [compiled.pattern, compiled]))
  const findMatch = (topic: string): TopicMatch | undefined => {
    const spec = exact.get(topic)
    if (spec) return { pattern: topic, spec, params: {} }
    for (const { pattern, spec, names, regexp } of patterns) {
      const found = regexp.exec(topic)
      if (!found) continue
      const params: Record<string, string> = {}
      names.forEach((name, i) => {
        params[name] = found[i + 1]!
      })
      return { pattern, spec, params }
    }
    return undefined
  }
  // Every message is matched (on the server per publish, on a client per delivery): remembered.
  const matches = new Map<string, TopicMatch | null>()
  return {
    topics: spec.topics,
    methods: (spec.methods ?? {}) as Contract<S>['methods'],
    match(topic) {
      let found = matches.get(topic)
      if (found === undefined) {
        found = findMatch(topic) ?? null
        // Topic names come from clients: the memo is bounded, and starts again when full.
        if (matches.size >= maxMemoized) matches.clear()
        matches.set(topic, found)
      }
      return found ?? undefined
    },
    topic(pattern, params) {
      const compiled = byPattern.get(pattern)
      if (!compiled) {
        if (exact.has(pattern)) return pattern as TopicOfPattern<typeof pattern>
        throw new Error(`contract.topic: ${pattern} is not a topic of the contract`)
      }
      const values = params as Record<string, unknown>
      return pattern.replace(parameter, (_, name: string) => {
        const value = values?.[name]
        if (typeof value !== 'string' || value.length === 0)
          throw new Error(`contract.topic: ${pattern} needs ${name} (a non-empty string)`)
        return value
      }) as TopicOfPattern<typeof pattern>
    },
  }
}
