import type { AuthUser } from './types.js'

export type RuleAction = 'subscribe' | 'publish' | 'call'

/** What a pattern grants: actions, and optionally the roles a user needs (any of them). */
export type TopicRule =
  | readonly RuleAction[]
  | { readonly actions: readonly RuleAction[]; readonly roles?: readonly string[] }

export interface AuthorizeRequest {
  readonly user: unknown
  readonly action: RuleAction
  /** The topic, or the method name for `call`. */
  readonly topic: string
}

interface CompiledRule {
  readonly pattern: string
  readonly regexp: RegExp
  /** User fields named by `{field}` placeholders, in order. */
  readonly fields: readonly string[]
  readonly actions: ReadonlySet<RuleAction>
  readonly roles: readonly string[] | undefined
}

const actions = new Set<RuleAction>(['subscribe', 'publish', 'call'])

const compile = (pattern: string, rule: TopicRule): CompiledRule => {
  if (typeof pattern !== 'string' || pattern.length === 0) throw new Error('topicRules: empty pattern')
  const granted = Array.isArray(rule) ? rule : (rule as { actions: readonly RuleAction[] }).actions
  if (!Array.isArray(granted) || granted.some((action) => !actions.has(action)))
    throw new Error(`topicRules: ${pattern}: actions must be subscribe, publish or call`)
  const roles = Array.isArray(rule) ? undefined : (rule as { roles?: readonly string[] }).roles
  const fields: string[] = []
  let source = ''
  // `*` is any run of characters; `{field}` is exactly the user's field; the rest is literal.
  for (const token of pattern.split(/(\*|\{[A-Za-z_][\w]*\})/)) {
    if (token === '*') source += '.*'
    else if (token.startsWith('{') && token.endsWith('}') && token.length > 2) {
      fields.push(token.slice(1, -1))
      source += '(.+)'
    } else source += token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return { pattern, regexp: new RegExp(`^${source}$`, 's'), fields, actions: new Set(granted), roles }
}

const rolesOf = (user: Partial<AuthUser> & { role?: unknown }): readonly string[] => {
  if (Array.isArray(user.roles)) return user.roles
  return typeof user.role === 'string' ? [user.role] : []
}

/**
 * An `authorize` function for the hub from rules by topic pattern, deny by default:
 * `topicRules({ 'room:*': ['subscribe', 'publish'], 'user:{id}': ['subscribe'],
 * 'admin:*': { actions: ['publish'], roles: ['admin'] } })`. A request is allowed when any rule
 * whose pattern matches grants its action (and the user has one of the rule's roles).
 */
export const topicRules = (
  rules: Readonly<Record<string, TopicRule>>,
): ((request: AuthorizeRequest) => boolean) => {
  if (typeof rules !== 'object' || rules === null) throw new Error('topicRules: rules must be an object')
  const compiled = Object.entries(rules).map(([pattern, rule]) => compile(pattern, rule))
  return ({ user, action, topic }) => {
    const subject = (typeof user === 'object' && user !== null ? user : {}) as Record<string, unknown>
    let roles: readonly string[] | undefined
    for (const rule of compiled) {
      if (!rule.actions.has(action)) continue
      const match = rule.regexp.exec(topic)
      if (!match) continue
      if (
        !rule.fields.every(
          (field, i) => subject[field] !== undefined && String(subject[field]) === match[i + 1],
        )
      )
        continue
      if (rule.roles) {
        roles ??= rolesOf(subject)
        if (!rule.roles.some((role) => roles!.includes(role))) continue
      }
      return true
    }
    return false
  }
}
