import { realpathSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import type { AdmissionCheck } from './admission.js';
import { checkSecurityPolicy, ENGINE_SOCKETS, type HostView, type ProtectedPath, type SecurityPolicy } from './security-policy.js';

/** The device's security policy as the first admission check (agent/admission/admission.ts). */
export function securityPolicyCheck(policy: SecurityPolicy, host: HostView): AdmissionCheck {
  return {
    name: 'security-policy',
    // Runs for a version restored from disk too: the owner may have tightened the policy since.
    check: (desired) => {
      const services = checkSecurityPolicy(desired, policy, host);
      return Object.keys(services).length === 0 ? null : { code: 'POLICY_REFUSED', services };
    },
  };
}

/**
 * What no container may bind on this device: the engine's sockets (root on
 * the host to whoever holds them), the agent's state directory (the device's
 * private keys) and its config file (this very policy).
 */
export function protectedHostPaths(args: { engineSocket: string; stateDir: string; configFile: string }): ProtectedPath[] {
  const engine = "the container engine's socket";
  const sockets = [...new Set([resolve(args.engineSocket), ...ENGINE_SOCKETS])];
  return [
    ...sockets.map((path) => ({ path, what: engine })),
    { path: resolve(args.stateDir), what: "the agent's state directory" },
    { path: resolve(args.configFile), what: "the agent's config file" },
  ];
}

/**
 * The host's view for the policy check: symlinks resolved as far as the path
 * exists, the rest appended (`/var/run/absent` → `/run/absent` where
 * /var/run links to /run), so that a link cannot smuggle a path past the
 * allowlist.
 */
export function hostView(protectedPaths: readonly ProtectedPath[]): HostView {
  return { protectedPaths, realPath: realHostPath };
}

export function realHostPath(path: string): string {
  const missing: string[] = [];
  let head = path;
  for (;;) {
    try {
      return posix.join(realpathSync.native(head), ...missing.reverse());
    } catch {
      // Absent, unreadable or a link loop: the engine cannot mount that part either; judge the ancestors.
      if (head === '/') return path;
      missing.push(posix.basename(head));
      head = posix.dirname(head);
    }
  }
}
