// The one way a message goes from the hub to its engine, for `hub.publish` and for a connection's
// `publish` alike: counted in the hub's stats and told to its observers.
import type { Engine, EnginePublishOptions } from './engine.js'
import type { Observers, PublishEvent } from './observers.js'

export class Publisher {
  constructor(
    private readonly engine: Engine,
    private readonly counters: { published: number },
    private readonly observers: Observers,
  ) {}

  /** Stores and delivers the message; resolves with its offset. */
  async stored(
    topic: string,
    json: string,
    options: EnginePublishOptions,
    source: PublishEvent['source'],
  ): Promise<number> {
    const { offset } = await this.observed(topic, source, false, () =>
      this.engine.publish(topic, json, options),
    )
    return offset
  }

  /** Delivers the message to who is subscribed now, storing nothing. */
  async volatile(
    topic: string,
    json: string,
    options: { origin?: string },
    source: PublishEvent['source'],
  ): Promise<void> {
    await this.observed(topic, source, true, () => this.engine.publishVolatile(topic, json, options))
  }

  /** Runs the engine call inside the observers, tells them how it went, and counts it. */
  private async observed<T extends { offset: number } | void>(
    topic: string,
    source: PublishEvent['source'],
    volatile: boolean,
    work: () => Promise<T>,
  ): Promise<T> {
    const result = await this.observers.timed(
      { kind: 'publish', topic, source, volatile },
      work,
      (durationMs, done, error) =>
        this.observers.publish({
          topic,
          source,
          volatile,
          durationMs,
          ...(done && { offset: done.offset }),
          ...(error !== undefined && { error }),
        }),
    )
    this.counters.published++
    return result
  }
}
