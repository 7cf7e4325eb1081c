import type { DeviceSettings } from '../../protocol/device-settings.js';

/** One deployment's contribution to a device: the revision this device should run. */
export interface Layer {
  deployment: string;
  priority: number;
  revision: number;
  compose: Readonly<Record<string, unknown>>;
  settings: DeviceSettings | null;
}

export interface LayerRef {
  deployment: string;
  priority: number;
}

/** A service or setting two layers both set: the first one wins, the others are shown in `status`. */
export interface LayerConflict {
  kind: 'service' | 'setting';
  name: string;
  winner: LayerRef;
  losers: LayerRef[];
}

export interface LayerSource {
  deployment: string;
  revision: number;
  /** The services this layer won (their secrets come from this revision). */
  services: string[];
}

export interface LayeredState {
  /** One compose document: every winning service, the volumes their layers declare. */
  compose: Record<string, unknown>;
  settings: DeviceSettings | null;
  sources: LayerSource[];
  conflicts: LayerConflict[];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Higher priority first; a tie goes to the name that sorts first, so every instance decides the same. */
export function layerOrder(a: LayerRef, b: LayerRef): number {
  return b.priority - a.priority || (a.deployment < b.deployment ? -1 : a.deployment > b.deployment ? 1 : 0);
}

/**
 * A layer's top-level `x-tsunagu` (default priority and update strategy of
 * its services) belongs to that layer only: it is moved into each of its
 * services, where a service's own value still wins.
 */
function servicesOf(compose: Readonly<Json>): [string, Json][] {
  const services = isObject(compose.services) ? compose.services : {};
  const defaults = isObject(compose['x-tsunagu']) ? compose['x-tsunagu'] : undefined;
  return Object.entries(services).map(([name, raw]) => {
    const service = isObject(raw) ? raw : {};
    if (defaults === undefined) return [name, service];
    const own = isObject(service['x-tsunagu']) ? service['x-tsunagu'] : {};
    return [name, { ...service, 'x-tsunagu': { ...defaults, ...own } }];
  });
}

/**
 * Pure: compose the layers that apply to one device into the one document it
 * receives. Each service name goes to the highest-priority layer that has
 * it; each setting likewise. Services are written in name order and the
 * project `name` is left out (layers may name different projects), so the
 * same layers always give the same document. No layers give an empty
 * document: the device stops the services deployments gave it.
 */
export function layerDeployments(layers: readonly Layer[]): LayeredState {
  const ordered = [...layers].sort(layerOrder);
  const services = new Map<string, { service: Json; layer: Layer }>();
  const claims = new Map<string, LayerRef[]>();
  for (const layer of ordered) {
    for (const [name, service] of servicesOf(layer.compose)) {
      if (!services.has(name)) services.set(name, { service, layer });
      claims.set(name, [...(claims.get(name) ?? []), { deployment: layer.deployment, priority: layer.priority }]);
    }
  }
  const settings: Record<string, unknown> = {};
  const settingClaims = new Map<string, LayerRef[]>();
  for (const layer of ordered) {
    for (const [name, value] of Object.entries(layer.settings ?? {})) {
      if (value === undefined) continue;
      if (!(name in settings)) settings[name] = value;
      settingClaims.set(name, [...(settingClaims.get(name) ?? []), { deployment: layer.deployment, priority: layer.priority }]);
    }
  }

  const winners = [...services.keys()].sort();
  const volumes: Json = {};
  const sources: LayerSource[] = [];
  for (const layer of ordered) {
    const won = winners.filter((n) => services.get(n)!.layer === layer);
    if (won.length === 0) continue;
    sources.push({ deployment: layer.deployment, revision: layer.revision, services: won });
    // Volumes are declared empty (`{}` or null) in the supported subset: the same name in two layers is the same volume.
    if (isObject(layer.compose.volumes)) for (const [v, spec] of Object.entries(layer.compose.volumes)) volumes[v] ??= spec;
  }
  const compose: Json = { services: Object.fromEntries(winners.map((n) => [n, services.get(n)!.service])) };
  if (Object.keys(volumes).length > 0) compose.volumes = Object.fromEntries(Object.keys(volumes).sort().map((v) => [v, volumes[v]]));

  const conflicts: LayerConflict[] = [];
  for (const [kind, map] of [['service', claims], ['setting', settingClaims]] as const) {
    for (const [name, refs] of [...map].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (refs.length > 1) conflicts.push({ kind, name, winner: refs[0]!, losers: refs.slice(1) });
    }
  }
  return {
    compose,
    settings: Object.keys(settings).length === 0 ? null : (settings),
    sources,
    conflicts,
  };
}
