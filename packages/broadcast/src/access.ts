// What a client may do: topic names it may use (those of the contract, when there is one),
// operations its authorizer allows, and the data it may publish (the contract's schemas).
import type { AnyContract, Checked, StandardSchemaV1, TopicMatch, TopicSpec } from '@flumen/contract'
import { check } from '@flumen/contract'
import type { Authorizer, HubAction } from '@flumen/core'
import { FlumenError } from '@flumen/core'
import type { PeerState } from './peer-state.js'

// Control characters and oversized names are refused; everything else is the app's to decide.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const invalidTopicCharacters = /[\u0000-\u001f\u007f]/

/**
 * Validates `value` with `schema`; a failure is `code` with the schema's issues. Synchronous when
 * the schema is (a publish then waits for no extra turn), a promise otherwise.
 */
export const validated = (
  schema: StandardSchemaV1,
  value: unknown,
  code: 'BAD_REQUEST' | 'INTERNAL',
  what: string,
): unknown | Promise<unknown> => {
  const settle = (result: Checked<unknown>): unknown => {
    if (result.ok) return result.value
    // The server's own data breaking the contract: logged in full, the client told only INTERNAL.
    if (code === 'INTERNAL')
      throw new FlumenError('INTERNAL', undefined, { cause: new Error(`${what}: ${result.message}`) })
    throw new FlumenError(code, `${what}: ${result.message}`, { issues: result.issues })
  }
  const result = check(schema, value)
  return result instanceof Promise ? result.then(settle) : settle(result)
}

/** Names (topics and method names) a plugin owns: its authorizer decides for them. */
interface Owner<User> {
  readonly prefix: string
  readonly authorize: Authorizer<User>
}

export class Access<User> {
  private readonly owners: Owner<User>[] = []

  constructor(
    private readonly authorize: Authorizer<User> | undefined,
    readonly maxTopicLength: number,
    private readonly logError: (err: unknown) => void,
    private readonly contract: AnyContract | undefined,
    private readonly allowUnknownTopics: boolean,
  ) {}

  /** The topic name, if it is one (and one of the contract's); BAD_REQUEST or FORBIDDEN otherwise. */
  checkTopic(topic: unknown): string {
    if (typeof topic !== 'string' || topic.length === 0)
      throw new FlumenError('BAD_REQUEST', 'topic must be a non-empty string')
    if (topic.length > this.maxTopicLength)
      throw new FlumenError('BAD_REQUEST', `topic is longer than ${this.maxTopicLength} characters`)
    if (invalidTopicCharacters.test(topic))
      throw new FlumenError('BAD_REQUEST', 'topic contains control characters')
    if (this.contract && !this.allowUnknownTopics && !this.contract.match(topic) && !this.ownerOf(topic))
      throw new FlumenError('FORBIDDEN', `${topic} is not a topic of the contract`)
    return topic
  }

  /** The contract's pattern, parameters and schemas of a topic, when the contract names it. */
  match(topic: string): TopicMatch | undefined {
    return this.contract?.match(topic)
  }

  private specOf(topic: string): TopicSpec | undefined {
    return this.contract?.match(topic)?.spec
  }

  /**
   * Hands the names starting with `prefix` to a plugin's authorizer (`hub.own`); returns the
   * function that gives them back.
   */
  own(prefix: string, authorize: Authorizer<User>): () => void {
    if (typeof prefix !== 'string' || prefix.length === 0)
      throw new Error('hub.own: prefix must be a non-empty string')
    if (typeof authorize !== 'function') throw new Error('hub.own: authorize must be a function')
    const clash = this.owners.find((o) => o.prefix.startsWith(prefix) || prefix.startsWith(o.prefix))
    if (clash) throw new Error(`hub.own: ${prefix} overlaps ${clash.prefix}, owned already`)
    const owner = { prefix, authorize }
    this.owners.push(owner)
    return () => {
      const at = this.owners.indexOf(owner)
      if (at >= 0) this.owners.splice(at, 1)
    }
  }

  /** The plugin owning a topic or method name, if one does. */
  ownerOf(name: string): Owner<User> | undefined {
    for (const owner of this.owners) if (name.startsWith(owner.prefix)) return owner
    return undefined
  }

  /**
   * Asks the authorizer (a plugin's, for a name it owns); FORBIDDEN unless it answers true (a
   * throw is logged and refuses).
   */
  async requireAllowed(state: PeerState<User>, action: HubAction, topic: string): Promise<void> {
    const authorize =
      this.owners.length > 0 ? (this.ownerOf(topic)?.authorize ?? this.authorize) : this.authorize
    if (!authorize) return
    let allowed: boolean
    try {
      allowed = await authorize({ user: state.user, action, topic, peer: state.peer })
    } catch (err) {
      this.logError(err)
      allowed = false
    }
    if (allowed !== true) throw new FlumenError('FORBIDDEN', `Not allowed to ${action} ${topic}`)
  }

  /** The data a client publishes to `topic`, after the contract's schema (which may transform it). */
  async validatePublish(topic: string, match: TopicMatch | undefined, data: unknown): Promise<unknown> {
    const spec = match?.spec
    if (!spec) return data
    return validated(spec.publish ?? spec.message, data, 'BAD_REQUEST', `Invalid publish to ${topic}`)
  }

  /**
   * Checks what is stored for a client publish (`beforePublish`'s result, or the client's data)
   * against the topic's message schema, unless the publish schema already was that one. Messages
   * travel as the schema's input (a transform shapes what receivers get, not what is stored). A
   * failure after a hook is the server's (INTERNAL): the client's data passed its schema.
   */
  async checkStored(
    topic: string,
    match: TopicMatch | undefined,
    data: unknown,
    fromHook: boolean,
  ): Promise<void> {
    const spec = match?.spec
    if (!spec || (!fromHook && spec.publish === undefined)) return
    await validated(
      spec.message,
      data,
      fromHook ? 'INTERNAL' : 'BAD_REQUEST',
      fromHook
        ? `The message beforePublish made for ${topic} breaks the contract`
        : `Invalid message for ${topic}`,
    )
  }

  /** A member as `identify` made it, against the topic's presence schema (the server's fault: INTERNAL). */
  async checkPresence(topic: string, info: unknown): Promise<void> {
    const presence = this.specOf(topic)?.presence
    if (presence)
      await validated(
        presence,
        info,
        'INTERNAL',
        `The presence identify made for ${topic} breaks the contract`,
      )
  }

  /**
   * Server code's publish, checked against the topic's message schema (BAD_REQUEST: a bug to see).
   * Throws at once for a synchronous schema; a promise only for an asynchronous one.
   */
  checkMessage(topic: string, data: unknown): Promise<unknown> | undefined {
    const spec = this.specOf(topic)
    if (!spec) return undefined
    const result = validated(spec.message, data, 'BAD_REQUEST', `Invalid message for ${topic}`)
    return result instanceof Promise ? result : undefined
  }
}
