import type { Engine, EngineListener, PresenceMember } from './engine.js'

/**
 * Presence kept in this process: who is connected to which topic, told to the hub for the topics
 * this node subscribes to. Presence is about live connections, so single-node engines keep it here
 * whatever they do with history.
 */
export class LocalPresence {
  private readonly topics = new Map<string, Map<string, PresenceMember>>()

  constructor(
    private readonly listener: () => EngineListener | undefined,
    private readonly subscribed: (topic: string) => boolean,
  ) {}

  add(topic: string, member: PresenceMember): void {
    let members = this.topics.get(topic)
    if (!members) {
      members = new Map()
      this.topics.set(topic, members)
    }
    members.set(member.connectionId, member)
    if (this.subscribed(topic)) this.listener()?.onPresence({ topic, join: [member] })
  }

  remove(topic: string, connectionId: string): void {
    const members = this.topics.get(topic)
    const member = members?.get(connectionId)
    if (!members || !member) return
    members.delete(connectionId)
    if (members.size === 0) this.topics.delete(topic)
    if (this.subscribed(topic)) this.listener()?.onPresence({ topic, leave: [member] })
  }

  list(topic: string): PresenceMember[] {
    return [...(this.topics.get(topic)?.values() ?? [])]
  }

  /** The engine's presence methods over this table; `assertOpen` throws once the engine closed. */
  engineMethods(assertOpen: () => void): Pick<Engine, 'presenceAdd' | 'presenceRemove' | 'presenceList'> {
    return {
      presenceAdd: async (topic, member) => {
        assertOpen()
        this.add(topic, member)
      },
      presenceRemove: async (topic, connectionId) => this.remove(topic, connectionId),
      presenceList: async (topic) => this.list(topic),
    }
  }

  clear(): void {
    this.topics.clear()
  }
}
