// What a client may do: topic names it may use, operations its authorizer allows, and the data
// it may publish (topic schemas).
import type { Authorizer, HubAction } from '@flumen/core'
import { FlumenError } from '@flumen/core'
import type { PeerState } from './peer-state.js'
import type { StandardSchemaV1 } from './schema.js'
import { validate } from './schema.js'

// Control characters and oversized names are refused; everything else is the app's to decide.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const invalidTopicCharacters = /[\u0000-\u001f\u007f]/

/** `*` matches any run of characters; the rest is literal. */
const patternToRegExp = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  )

export class Access<User> {
  private readonly topicSchemas: { pattern: RegExp; schema: StandardSchemaV1 }[] = []

  constructor(
    private readonly authorize: Authorizer<User> | undefined,
    readonly maxTopicLength: number,
    private readonly logError: (err: unknown) => void,
  ) {}

  /** The topic name, if it is one; BAD_REQUEST otherwise. */
  checkTopic(topic: unknown): string {
    if (typeof topic !== 'string' || topic.length === 0)
      throw new FlumenError('BAD_REQUEST', 'topic must be a non-empty string')
    if (topic.length > this.maxTopicLength)
      throw new FlumenError('BAD_REQUEST', `topic is longer than ${this.maxTopicLength} characters`)
    if (invalidTopicCharacters.test(topic))
      throw new FlumenError('BAD_REQUEST', 'topic contains control characters')
    return topic
  }

  /** Asks the authorizer; FORBIDDEN unless it answers true (a throw is logged and refuses). */
  async requireAllowed(state: PeerState<User>, action: HubAction, topic: string): Promise<void> {
    if (!this.authorize) return
    let allowed: boolean
    try {
      allowed = await this.authorize({ user: state.user, action, topic, peer: state.peer })
    } catch (err) {
      this.logError(err)
      allowed = false
    }
    if (allowed !== true) throw new FlumenError('FORBIDDEN', `Not allowed to ${action} ${topic}`)
  }

  addTopicSchema(pattern: string, schema: StandardSchemaV1): void {
    if (typeof schema?.['~standard']?.validate !== 'function')
      throw new Error('hub.topicSchema: schema must be a Standard Schema')
    this.topicSchemas.push({ pattern: patternToRegExp(pattern), schema })
  }

  /** The data a client publishes to `topic`, after every matching schema (which may transform it). */
  async validatePublish(topic: string, data: unknown): Promise<unknown> {
    let value = data
    for (const { pattern, schema } of this.topicSchemas) {
      if (!pattern.test(topic)) continue
      const result = await validate(schema, value)
      if (!result.ok) throw new FlumenError('BAD_REQUEST', result.message)
      value = result.value
    }
    return value
  }
}
