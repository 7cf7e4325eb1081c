import { posix } from 'node:path';
import type { DesiredService, DesiredState } from '../../protocol/compose/desired-service.js';
import { isWithin, matchesPathPattern } from './path-pattern.js';

/** A host path pattern a bind mount may come from; `readOnly`: only `:ro` binds of it. */
export interface BindRule {
  path: string;
  readOnly: boolean;
}

/**
 * What containers may do on this device: set by the device owner in the
 * agent's config file, never by the fleet, so that a stolen fleet key cannot
 * take the device over through a desired state.
 */
export interface SecurityPolicy {
  allowPrivileged: boolean;
  allowHostNetwork: boolean;
  allowHostPid: boolean;
  /** Capabilities `cap_add` may name (upper case, no CAP_ prefix); `ALL` allows every one, `cap_add: [ALL]` included. */
  capabilities: readonly string[];
  binds: readonly BindRule[];
  /** Host device path patterns (`/dev/ttyUSB*`). */
  devices: readonly string[];
}

/**
 * Nothing beyond an ordinary container. Host networking is off too: with the
 * NET_RAW capability every container has by default, a container on the host's
 * network can read all the traffic of the gateway it runs on.
 */
export const DEFAULT_SECURITY_POLICY: SecurityPolicy = {
  allowPrivileged: false, allowHostNetwork: false, allowHostPid: false, capabilities: [], binds: [], devices: [],
};

/** Where the well-known container engines listen (the configured socket is added by the caller). */
export const ENGINE_SOCKETS = [
  '/var/run/docker.sock', '/run/docker.sock',
  '/run/containerd/containerd.sock', '/var/run/containerd/containerd.sock',
  '/run/podman/podman.sock', '/var/run/podman/podman.sock',
  '/var/run/balena-engine.sock', '/run/balena-engine.sock',
] as const;

/** A host path no container may bind, nor anything inside it, nor any directory above it. */
export interface ProtectedPath {
  path: string;
  /** What it is, for the reason: "the container engine's socket". */
  what: string;
}

/** What the check needs to know about the host. */
export interface HostView {
  protectedPaths: readonly ProtectedPath[];
  /**
   * Where a normalised absolute path really leads, symlinks resolved (as far
   * as the path exists): the engine mounts what the link points to.
   */
  realPath(path: string): string;
}

/** Reasons per service; a service that passes has no entry. */
export type PolicyFindings = Record<string, string[]>;

/**
 * Judge a desired state against the device's policy. Pure: the host is seen
 * only through `host`. Every reason names the setting as written in the
 * document and the policy key that would allow it, so that an operator can
 * tell at once whether to change the document or ask the device's owner.
 */
export function checkSecurityPolicy(desired: DesiredState, policy: SecurityPolicy, host: HostView): PolicyFindings {
  const protectedForms = host.protectedPaths.flatMap((p) => {
    const real = host.realPath(p.path);
    return real === p.path ? [p] : [p, { path: real, what: p.what }];
  });
  const findings: PolicyFindings = {};
  for (const service of desired.services) {
    const reasons = serviceReasons(service, policy, host, protectedForms);
    if (reasons.length > 0) findings[service.name] = reasons;
  }
  return findings;
}

const notAllowed = (key: keyof SecurityPolicy): string => `not allowed by this device's policy (policy.${key})`;

function serviceReasons(s: DesiredService, policy: SecurityPolicy, host: HostView, protectedPaths: readonly ProtectedPath[]): string[] {
  const reasons: string[] = [];
  if (s.privileged && !policy.allowPrivileged) reasons.push(`privileged: ${notAllowed('allowPrivileged')}`);
  if (s.networkMode === 'host' && !policy.allowHostNetwork) reasons.push(`network_mode host: ${notAllowed('allowHostNetwork')}`);
  if (s.pid === 'host' && !policy.allowHostPid) reasons.push(`pid host: ${notAllowed('allowHostPid')}`);
  for (const cap of s.capAdd) {
    const allowed = policy.capabilities.includes(cap) || policy.capabilities.includes('ALL');
    if (!allowed) reasons.push(`cap_add ${cap}: not in policy.capabilities`);
  }
  s.volumes.forEach((v, i) => {
    if (v.type !== 'bind') return; // named volumes live in the engine's own storage
    const reason = bindReason(v.source, v.readOnly, policy, host, protectedPaths);
    if (reason !== null) reasons.push(`volumes[${i}] bind ${reason}`);
  });
  for (const d of s.devices) {
    const reason = deviceReason(d.host, policy, host);
    if (reason !== null) reasons.push(`devices ${reason}`);
  }
  return reasons;
}

/** The path as written, then where it really leads when that differs: `/srv/link (→ /)`. */
function shown(written: string, real: string): string {
  return real === written ? written : `${written} (→ ${real})`;
}

function bindReason(source: string, readOnly: boolean, policy: SecurityPolicy, host: HostView, protectedPaths: readonly ProtectedPath[]): string | null {
  // `..` is resolved before anything is compared: `/srv/app/../../etc` is `/etc`.
  const written = posix.normalize(source);
  const real = host.realPath(written);
  const name = shown(source, real);
  for (const p of protectedPaths) {
    if (isWithin(written, p.path) || isWithin(real, p.path)) return `${name}: ${p.what} is never allowed`;
  }
  for (const p of protectedPaths) {
    if (isWithin(p.path, written) || isWithin(p.path, real)) return `${name}: contains ${p.what} (${p.path}), never allowed`;
  }
  const rules = policy.binds.filter((r) => matchesPathPattern(r.path, real));
  if (rules.length === 0) return `${name}: not in policy.binds`;
  if (!readOnly && rules.every((r) => r.readOnly)) return `${name}: policy.binds allows it read-only only (mount it with :ro)`;
  return null;
}

function deviceReason(path: string, policy: SecurityPolicy, host: HostView): string | null {
  const written = posix.normalize(path);
  const real = host.realPath(written);
  const name = shown(path, real);
  return policy.devices.some((pattern) => matchesPathPattern(pattern, real)) ? null : `${name}: not in policy.devices`;
}
