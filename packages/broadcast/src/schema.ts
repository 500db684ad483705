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
  type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output']
}

/** Validates `value`; resolves with the parsed value or a readable list of issues. */
export const validate = async <Output>(
  schema: StandardSchemaV1<unknown, Output>,
  value: unknown,
): Promise<{ ok: true; value: Output } | { ok: false; message: string }> => {
  const result = await schema['~standard'].validate(value)
  if (result.issues) {
    const message = result.issues
      .slice(0, 5)
      .map((issue) => {
        const path = issue.path?.map((part) => String(typeof part === 'object' ? part.key : part)).join('.')
        return path ? `${path}: ${issue.message}` : issue.message
      })
      .join('; ')
    return { ok: false, message: message || 'Invalid data' }
  }
  return { ok: true, value: result.value }
}
