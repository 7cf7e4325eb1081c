import type { ReceivedDeviceEvent } from '../../protocol/events/device-events.js';

/** A pull's progress, as deploy and watch show it. */
export interface PullProgress {
  service: string;
  image: string;
  current: number;
  total: number;
  percent: number;
}

/**
 * Pull progress as the agent reports it on its `events` topic:
 * `service-pull-progress` (protocol.md §9.6). Undefined for any other event.
 */
export function pullProgressOf(received: ReceivedDeviceEvent): PullProgress | undefined {
  if (!received.known || received.event.type !== 'service-pull-progress') return undefined;
  const { service, image, currentBytes: current, totalBytes: total } = received.event;
  return { service, image, current, total, percent: total > 0 ? Math.min(100, Math.floor((current / total) * 100)) : 0 };
}
