/**
 * The version of a new desired state for one device.
 *
 * Choice: the fleet signer's counter, reserved for this deployment. It is
 * monotonic per fleet key and persisted before use (FleetSigner), with the
 * fleet host's clock in milliseconds as a floor, so every deployment gets a
 * version higher than any earlier deployment by this fleet to any device —
 * without reading anything from the broker first, which also makes
 * `--no-wait` deployments to absent devices correct.
 *
 * As a guard against a lost counter file on a host whose clock went back, the
 * versions seen on the device's retained `desired` (verified with the fleet
 * key) and `state` topics are a second floor: the result is strictly above
 * both.
 */
export interface VersionsSeen {
  /** The version of the device's retained desired state (or the last one the fleet database records). */
  desired?: number | null | undefined;
  desiredVersion?: number | null | undefined;
  appliedVersion?: number | null | undefined;
}

export function chooseVersion(counter: number, seen: VersionsSeen): number {
  const previous = Math.max(0, seen.desired ?? 0, seen.desiredVersion ?? 0, seen.appliedVersion ?? 0);
  return Math.max(counter, previous + 1);
}
