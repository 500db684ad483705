// What a contract makes of the hub's signatures: topics, publish data, methods and the
// `beforePublish` request, each falling back to the untyped shape for a hub without a contract.
import type {
  AnyContract,
  MessageInputOf,
  MethodArgumentOf,
  MethodName,
  MethodResultOf,
  PublishOf,
  StandardSchemaV1,
  TopicName,
  TopicOfPattern,
} from '@flumen/contract'
import type { Peer } from '@flumen/core'

interface PublishRequestBase<User> {
  readonly user: User
  readonly peer: Peer<User>
  /** A volatile publish (`"volatile":true`): delivered to who is connected now, never stored. */
  readonly volatile: boolean
}

/**
 * A client publish, as `beforePublish` sees it. With a contract, `pattern` says which topic of the
 * contract it is (and narrows `data`: `if (request.pattern === 'room:{id}')`), `params` its values.
 */
export type PublishRequest<
  User = unknown,
  C extends AnyContract | undefined = undefined,
> = C extends AnyContract
  ? {
      [P in keyof C['topics'] & string]: PublishRequestBase<User> & {
        readonly topic: TopicOfPattern<P>
        readonly pattern: P
        readonly params: Readonly<Record<string, string>>
        /** The client's data, after the topic's `publish` (or `message`) schema. */
        readonly data: PublishOf<C, TopicOfPattern<P>>
      }
    }[keyof C['topics'] & string]
  : PublishRequestBase<User> & {
      readonly topic: string
      /** The contract's pattern of the topic (with a contract). */
      readonly pattern?: string
      readonly params?: Readonly<Record<string, string>>
      readonly data: unknown
    }

/** Topic names a hub publishes to: its contract's, or any string. */
export type HubTopic<C extends AnyContract | undefined> = C extends AnyContract ? TopicName<C> : string
/** What `hub.publish` takes for topic `T`. */
export type HubMessage<C extends AnyContract | undefined, T extends string> = C extends AnyContract
  ? MessageInputOf<C, T>
  : unknown
export type HubMethodName<C extends AnyContract | undefined> = C extends AnyContract ? MethodName<C> : string
export type HubMethodData<C extends AnyContract | undefined, N extends string, Schema> = C extends AnyContract
  ? MethodArgumentOf<C, N & MethodName<C>>
  : Schema extends StandardSchemaV1
    ? StandardSchemaV1.InferOutput<Schema>
    : unknown
export type HubMethodResult<C extends AnyContract | undefined, N extends string> = C extends AnyContract
  ? MethodResultOf<C, N & MethodName<C>> | Promise<MethodResultOf<C, N & MethodName<C>>>
  : unknown
