export type {
  AnyContract,
  Contract,
  ContractSpec,
  MessageInputOf,
  MessageOf,
  MethodArgumentOf,
  MethodInputOf,
  MethodName,
  MethodOutputOf,
  MethodResultOf,
  MethodSpec,
  ParamsOfPattern,
  PatternOf,
  PresenceOf,
  PublishInputOf,
  PublishOf,
  TopicMatch,
  TopicName,
  TopicOfPattern,
  TopicSpec,
} from './contract.js'
export { defineContract } from './contract.js'
export type { Checked, SchemaIssue, StandardSchemaV1 } from './schema.js'
export { check, isStandardSchema } from './schema.js'
