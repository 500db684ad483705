// The Standard Schema interface (https://standardschema.dev), copied as its authors intend, so
// zod, valibot, arktype and others validate topic and method data without a dependency on them.

/** A Standard Schema-compatible validator. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1
    readonly vendor: string
    readonly validate: (
      value: unknown,
    ) => StandardSchemaV1.Result<Output> | Promise<StandardSchemaV1.Result<Output>>
    readonly types?: { readonly input: Input; readonly output: Output } | undefined
  }
}

export declare namespace StandardSchemaV1 {
  type Result<Output> = SuccessResult<Output> | FailureResult
  interface SuccessResult<Output> {
    readonly value: Output
    readonly issues?: undefined
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>
  }
  interface Issue {
    readonly message: string
    readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined
  }
  type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input']
  type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output']
}

/** One problem a schema found, as Flumen sends it: a message and where (`['from', 'name']`). */
export interface SchemaIssue {
  readonly message: string
  readonly path?: readonly (string | number)[]
}

export type Checked<Output> =
  | { readonly ok: true; readonly value: Output }
  | { readonly ok: false; readonly issues: readonly SchemaIssue[]; readonly message: string }

/** Issues sent on the wire at most: a schema that reports thousands does not make a huge error. */
const maxIssues = 20

const settle = <Output>(result: StandardSchemaV1.Result<Output>): Checked<Output> => {
  if (!result.issues) return { ok: true, value: result.value }
  const issues = result.issues.slice(0, maxIssues).map((issue): SchemaIssue => {
    const path = issue.path?.map((part) => {
      const key = typeof part === 'object' && part !== null ? part.key : part
      return typeof key === 'number' ? key : String(key)
    })
    return path && path.length > 0
      ? { message: String(issue.message), path }
      : { message: String(issue.message) }
  })
  const message =
    issues
      .slice(0, 5)
      .map((issue) => (issue.path ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
      .join('; ') || 'Invalid data'
  return { ok: false, issues, message }
}

/**
 * Validates `value`: synchronously when the schema is (zod, valibot and arktype are, unless a
 * refinement is async), so a caller can keep order without waiting a turn.
 */
export const check = <Output>(
  schema: StandardSchemaV1<unknown, Output>,
  value: unknown,
): Checked<Output> | Promise<Checked<Output>> => {
  const result = schema['~standard'].validate(value)
  return result instanceof Promise ? result.then(settle) : settle(result)
}

/** True for anything with a Standard Schema `validate`. */
export const isStandardSchema = (value: unknown): value is StandardSchemaV1 =>
  typeof (value as StandardSchemaV1 | undefined)?.['~standard']?.validate === 'function'
