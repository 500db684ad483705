// Protocol v1 (docs/protocol.md) on one connection: parses each client message, runs it through a
// table of operations, and answers with its ack, result or error.
import { FlumenError, idOfUser, toFlumenError } from '@flumen/core'
import type { Access } from './access.js'
import type { PublishRequest } from './contract-types.js'
import { deltaEncoding } from './delta-delivery.js'
import type { Methods } from './methods.js'
import type { PeerState } from './peer-state.js'
import type { InboundMessage } from './protocol.js'
import {
  ackEnvelope,
  errorEnvelope,
  nestsDeeperThan,
  parsePosition,
  pongEnvelope,
  publishKeyPattern,
  resultEnvelope,
  subscribeAck,
} from './protocol.js'
import type { Publisher } from './publisher.js'
import type { Subscriptions } from './subscriptions.js'
import type { Topics } from './topics.js'

/**
 * A client's key is its user's own: the same key from someone else is another publish. Prefixes
 * keep users (`u:`), connections without a user (`a:`) and server code (`s:`) apart; a key has no
 * `:`, so the user id before it cannot be confused with another's.
 */
const clientKey = (user: unknown, key: string): string => {
  const id = idOfUser(user)
  return id === undefined ? `a:${key}` : `u:${id}:${key}`
}

export interface SessionContext<User> {
  readonly publisher: Publisher
  readonly topics: Topics<User>
  readonly access: Access<User>
  readonly subscriptions: Subscriptions<User>
  readonly methods: Methods<User>
  readonly authenticate: ((token: string, state: PeerState<User>) => Promise<User | undefined>) | undefined
  readonly beforePublish: ((request: PublishRequest<User>) => unknown) | undefined
  readonly maxJsonDepth: number
  readonly logError: (err: unknown) => void
}

/**
 * One operation: answers synchronously (a reply it sends itself) or returns the work to run, whose
 * text (if any) is the answer; a rejection becomes an error answer with the message's id.
 */
type Operation<User> = (
  state: PeerState<User>,
  message: InboundMessage,
  id: number | undefined,
) => (() => Promise<string | undefined>) | undefined

export class ProtocolSession<User> {
  private readonly operations: Readonly<Record<string, Operation<User>>>

  constructor(private readonly context: SessionContext<User>) {
    const { access, subscriptions, methods, publisher, topics } = context
    this.operations = {
      publish: (state, message, id) => async () => {
        const name = access.checkTopic(message.topic)
        if (!('data' in message) || message.data === undefined)
          throw new FlumenError('BAD_REQUEST', 'publish needs data')
        const key = message.key
        if (key !== undefined && (typeof key !== 'string' || !publishKeyPattern.test(key)))
          throw new FlumenError('BAD_REQUEST', 'key must be 1-64 characters of A-Z a-z 0-9 _ -')
        if (message.volatile !== undefined && typeof message.volatile !== 'boolean')
          throw new FlumenError('BAD_REQUEST', 'volatile must be true or false')
        const volatile = message.volatile === true
        // A key makes a retry the same stored message; a volatile one is never stored or retried.
        if (volatile && key !== undefined)
          throw new FlumenError('BAD_REQUEST', 'A volatile publish has no key')
        await access.requireAllowed(state, 'publish', name)
        // The topic's contract entry, looked up once for the publish's checks and its hook.
        const match = access.match(name)
        const validated = await access.validatePublish(name, match, message.data)
        const stamped = await context.beforePublish?.({
          user: state.user,
          peer: state.peer,
          topic: name,
          data: validated,
          volatile,
          ...(match && { pattern: match.pattern, params: match.params }),
        })
        // Stored as sent (the schemas' input), or as the hook made it.
        const stored = stamped === undefined ? message.data : stamped
        await access.checkStored(name, match, stored, stamped !== undefined)
        const json = JSON.stringify(stored)
        if (json === undefined) throw new FlumenError('INTERNAL', 'beforePublish returned no JSON')
        const origin = message.echo === true ? {} : { origin: state.peer.id }
        if (volatile) {
          await publisher.volatile(name, json, origin, 'client')
          return id === undefined ? undefined : ackEnvelope(id)
        }
        const offset = await publisher.stored(
          name,
          json,
          { ...origin, ...(typeof key === 'string' && { key: clientKey(state.user, key) }) },
          'client',
        )
        return id === undefined ? undefined : ackEnvelope(id, { offset })
      },
      subscribe: (state, message, id) => {
        const since = parsePosition(message.since)
        if (since === null) {
          topics.reply(state.peer, errorEnvelope(id, 'BAD_REQUEST', 'since must be { epoch, offset }'))
          return undefined
        }
        const { delta } = message
        if (delta !== undefined && delta !== deltaEncoding) {
          topics.reply(state.peer, errorEnvelope(id, 'BAD_REQUEST', `delta must be "${deltaEncoding}"`))
          return undefined
        }
        return async () => {
          await subscriptions.subscribe(
            state,
            message.topic,
            since,
            (result) => topics.reply(state.peer, subscribeAck(id, result)),
            { delta: delta !== undefined },
          )
          return undefined
        }
      },
      unsubscribe: (state, message, id) => async () => {
        const name = access.checkTopic(message.topic)
        if (!state.topics.has(name)) throw new FlumenError('BAD_REQUEST', `Not subscribed to ${name}`)
        await subscriptions.leave(state, name)
        return id === undefined ? undefined : ackEnvelope(id)
      },
      call: (state, message, id) => {
        if (id === undefined) {
          topics.reply(state.peer, errorEnvelope(undefined, 'BAD_REQUEST', 'call needs an id'))
          return undefined
        }
        return async () => {
          const name = message.method
          if (typeof name !== 'string' || name.length === 0 || name.length > access.maxTopicLength)
            throw new FlumenError('BAD_REQUEST', 'call needs a method name')
          await access.requireAllowed(state, 'call', name)
          return resultEnvelope(
            id,
            await methods.call(name, message.data, { user: state.user, peer: state.peer }),
          )
        }
      },
      auth: (state, message, id) => async () => {
        await this.refreshAuth(state, message)
        return id === undefined ? undefined : ackEnvelope(id)
      },
      ping: (state) => {
        topics.reply(state.peer, pongEnvelope)
        return undefined
      },
    }
  }

  /** Handles one text message of the connection. */
  receive(state: PeerState<User>, text: string): void {
    const parsed = this.parse(text)
    if (typeof parsed === 'string') {
      this.context.topics.reply(state.peer, errorEnvelope(undefined, 'BAD_REQUEST', parsed))
      return
    }
    const { message, id } = parsed
    const operation =
      typeof message.type === 'string' && Object.hasOwn(this.operations, message.type)
        ? this.operations[message.type]!
        : undefined
    if (!operation) {
      this.context.topics.reply(state.peer, errorEnvelope(id, 'BAD_REQUEST', 'Unknown message type'))
      return
    }
    const work = operation(state, message, id)
    if (work) this.run(state, id, work)
  }

  /** The message and its id, or why it is not one. */
  private parse(text: string): { message: InboundMessage; id: number | undefined } | string {
    const { maxJsonDepth } = this.context
    if (nestsDeeperThan(text, maxJsonDepth)) return `JSON nested deeper than ${maxJsonDepth}`
    let message: InboundMessage
    try {
      message = JSON.parse(text) as InboundMessage
    } catch {
      return 'Malformed JSON'
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message))
      return 'A message must be a JSON object'
    const id = message.id
    if (id !== undefined && !(typeof id === 'number' && Number.isSafeInteger(id) && id >= 0))
      return 'id must be a non-negative integer'
    return { message, id: id as number | undefined }
  }

  /** The `id` of a protocol message, when it has a valid one (for answers to messages not run). */
  messageId(text: string): number | undefined {
    if (nestsDeeperThan(text, this.context.maxJsonDepth)) return undefined
    try {
      const id = (JSON.parse(text) as InboundMessage | null)?.id
      return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined
    } catch {
      return undefined
    }
  }

  private run(state: PeerState<User>, id: number | undefined, work: () => Promise<string | undefined>): void {
    const { topics, logError } = this.context
    work().then(
      (text) => {
        if (text !== undefined && !state.closed) topics.reply(state.peer, text)
      },
      (err: unknown) => {
        const error = toFlumenError(err)
        if (error.code === 'INTERNAL') logError(err)
        if (!state.closed)
          topics.reply(state.peer, errorEnvelope(id, error.code, error.message, error.issues))
      },
    )
  }

  private async refreshAuth(state: PeerState<User>, message: InboundMessage): Promise<void> {
    const { authenticate } = this.context
    if (!authenticate) throw new FlumenError('BAD_REQUEST', 'auth is not enabled on this server')
    if (typeof message.token !== 'string' || message.token.length === 0)
      throw new FlumenError('BAD_REQUEST', 'auth needs a token')
    let user: User | undefined
    try {
      user = await authenticate(message.token, state)
    } catch (err) {
      throw err instanceof FlumenError ? err : new FlumenError('UNAUTHORIZED')
    }
    if (user === undefined || user === null) throw new FlumenError('UNAUTHORIZED')
    state.user = user
  }
}
