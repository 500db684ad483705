// What a client with a contract checks of what it receives: messages (in arrival order per topic,
// also when a schema is asynchronous), presence members and call results. What breaks the contract
// is reported as INVALID_MESSAGE and never reaches the app.
import type { AnyContract, Checked, StandardSchemaV1 } from '@flumen/contract'
import { check } from '@flumen/contract'
import { FlumenClientError } from './errors.js'

const invalid = (
  what: string,
  topic: string | undefined,
  result: Checked<unknown> & { ok: false },
): FlumenClientError =>
  new FlumenClientError('INVALID_MESSAGE', `${what} breaks the contract: ${result.message}`, {
    issues: result.issues,
    ...(topic !== undefined && { topic }),
  })

export class ContractChecks {
  /** Per topic, the deliveries waiting behind an asynchronous check. */
  private readonly queues = new Map<string, Promise<void>>()

  constructor(
    private readonly contract: AnyContract | undefined,
    private readonly report: (error: FlumenClientError) => void,
  ) {}

  /** Hands `data` (as the topic's schema outputs it) to `deliver` once it passed, in order per topic. */
  message(topic: string, data: unknown, deliver: (value: unknown) => void): void {
    const schema = this.contract?.match(topic)?.spec.message
    if (!schema) {
      deliver(data)
      return
    }
    const queued = this.queues.get(topic)
    const settle = (result: Checked<unknown>): void => {
      if (result.ok) deliver(result.value)
      else this.report(invalid(`A message of ${topic}`, topic, result))
    }
    if (queued) {
      this.enqueue(
        topic,
        queued.then(async () => settle(await check(schema, data))),
      )
      return
    }
    const result = check(schema, data)
    if (result instanceof Promise) this.enqueue(topic, result.then(settle))
    else settle(result)
  }

  /**
   * The members that pass the topic's presence schema (reported, and left out, otherwise).
   * Presence schemas must be synchronous: an asynchronous one leaves every member out.
   */
  members(topic: string, members: readonly unknown[]): unknown[] {
    const schema = this.contract?.match(topic)?.spec.presence
    if (!schema) return [...members]
    return members.flatMap((member) => {
      const result = check(schema, member)
      if (result instanceof Promise) {
        this.report(
          new FlumenClientError('INVALID_MESSAGE', `The presence schema of ${topic} is asynchronous`, {
            topic,
          }),
        )
        return []
      }
      if (result.ok) return [result.value]
      this.report(invalid(`A presence member of ${topic}`, topic, result))
      return []
    })
  }

  /** A call's result as the method's output schema makes it; rejects with INVALID_MESSAGE. */
  async result(method: string, data: unknown): Promise<unknown> {
    const schema: StandardSchemaV1 | undefined = this.contract?.methods[method]?.output
    if (!schema) return data
    const result = await check(schema, data)
    if (result.ok) return result.value
    throw invalid(`The result of ${method}`, undefined, result)
  }

  private enqueue(topic: string, work: Promise<void>): void {
    const done = work.catch((err: unknown) =>
      this.report(new FlumenClientError('INVALID_MESSAGE', String(err), { cause: err, topic })),
    )
    this.queues.set(topic, done)
    void done.then(() => {
      if (this.queues.get(topic) === done) this.queues.delete(topic)
    })
  }
}
