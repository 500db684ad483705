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
    const { offset } = await this.observers.timed(
      { kind: 'publish', topic, source, volatile: false },
      () => this.engine.publish(topic, json, options),
      (durationMs, stored, error) =>
        this.observers.publish({
          topic,
          source,
          volatile: false,
          durationMs,
          ...(stored && { offset: stored.offset }),
          ...(error !== undefined && { error }),
        }),
    )
    this.counters.published++
    return offset
  }

  /** Delivers the message to who is subscribed now, storing nothing. */
  async volatile(
    topic: string,
    json: string,
    options: { origin?: string },
    source: PublishEvent['source'],
  ): Promise<void> {
    await this.observers.timed(
      { kind: 'publish', topic, source, volatile: true },
      () => this.engine.publishVolatile(topic, json, options),
      (durationMs, _result, error) =>
        this.observers.publish({
          topic,
          source,
          volatile: true,
          durationMs,
          ...(error !== undefined && { error }),
        }),
    )
    this.counters.published++
  }
}
