import type { AclEntry, RoleSpec } from '../broker-roles.js';

/** What a client asks to do, in the terms of Mosquitto's dynamic-security ACL types. */
export type AccessKind = 'publishClientSend' | 'publishClientReceive' | 'subscribe';

/**
 * MQTT topic matching of one ACL topic (which may hold `+` and `#`) against
 * a topic or a subscription filter whose levels are taken literally: a
 * filter's own `+` or `#` is matched only by an ACL wildcard at that level,
 * which is how the dynamic-security plugin judges subscribePattern.
 * A leading wildcard never matches a `$` topic (MQTT 3.1.1 §4.7.2).
 */
export function aclTopicMatches(aclTopic: string, topic: string): boolean {
  const acl = aclTopic.split('/');
  const levels = topic.split('/');
  if (topic.startsWith('$') && (acl[0] === '+' || acl[0] === '#')) return false;
  for (let i = 0; i < acl.length; i++) {
    const a = acl[i]!;
    if (a === '#') return i === acl.length - 1;
    if (i >= levels.length) return false;
    if (a !== '+' && a !== levels[i]) return false;
  }
  return acl.length === levels.length;
}

function entryApplies(entry: AclEntry, kind: AccessKind, topic: string): boolean {
  switch (kind) {
    case 'publishClientSend':
    case 'publishClientReceive':
      return entry.acltype === kind && aclTopicMatches(entry.topic, topic);
    case 'subscribe':
      return (entry.acltype === 'subscribeLiteral' && entry.topic === topic)
        || (entry.acltype === 'subscribePattern' && aclTopicMatches(entry.topic, topic));
  }
}

/**
 * Decide one access against a client's roles, as the plugin does: the
 * matching entry of highest priority wins, and no matching entry means deny
 * (the fleet's default access, `DEFAULT_ACL_ACCESS`, denies all three kinds).
 */
export function aclAllows(roles: readonly RoleSpec[], kind: AccessKind, topic: string): boolean {
  let best: AclEntry | undefined;
  for (const role of roles) {
    for (const entry of role.acls) {
      if (!entryApplies(entry, kind, topic)) continue;
      // On equal priority a deny wins: the safer reading of an ambiguous role.
      if (best === undefined || (entry.priority ?? 0) > (best.priority ?? 0) || ((entry.priority ?? 0) === (best.priority ?? 0) && !entry.allow)) best = entry;
    }
  }
  return best?.allow === true;
}

/** Usernames and client ids that carry a wildcard or a level separator never authenticate. */
export function isPlainName(name: string): boolean {
  return name.length > 0 && !name.includes('\0') && !/[+#/]/.test(name);
}

/**
 * Aedes has no shared subscriptions: `$share/{group}/{filter}` is turned into
 * `{filter}`. Only the one enrollment service of an embedded broker uses it,
 * so there is no group to share between.
 */
export function unshareFilter(filter: string): string {
  const m = /^\$share\/[^/+#]+\/(.+)$/.exec(filter);
  return m === null ? filter : m[1]!;
}
