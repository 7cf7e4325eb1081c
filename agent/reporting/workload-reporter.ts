import type { DeviceEventBody } from '../../protocol/events/device-events.js';
import type { ImageEvent } from '../images/image-collector.js';
import type { PressureEvent } from '../pressure/pressure-monitor.js';
import type { SupervisorEvent, SupervisorState } from '../supervisor/supervisor-events.js';

/** What an open session takes from the workload: the retained state and the events topic. */
export interface SessionReports {
  /** The desired channel turns supervisor snapshots into the retained `state` message. */
  desired: {
    onSupervisorState(state: SupervisorState): void;
    onProven(version: string): void;
    /** Something besides the supervisor's snapshot changed (an image collection). */
    republish(): void;
  };
  emitEvent(event: DeviceEventBody): void;
}

/** Local code that follows the supervisor (image housekeeping, the status file). */
export interface SupervisorObserver {
  onSupervisorState?(state: SupervisorState): void;
  onSupervisorEvent?(event: SupervisorEvent): void;
}

export interface WorkloadReporterOptions {
  /** Supervisor events, as the fleet gets them (the agent names them `service-…` and adds the traceparent). */
  serviceEvent: (event: SupervisorEvent) => void;
  /** Pressure events, as the fleet gets them. */
  pressureEvent: (event: PressureEvent) => void;
}

/**
 * The one way from the workload to the fleet: the supervisor, the image
 * housekeeping and the pressure monitor report here, whether or not a
 * session is open; the session of the moment (`connect`) carries it on.
 * The workload starts before the device has an identity and outlives a
 * re-enrollment, so it is built against this, never against a session.
 */
export class WorkloadReporter {
  private session: SessionReports | undefined;
  private readonly observers: SupervisorObserver[] = [];

  constructor(private readonly opts: WorkloadReporterOptions) {}

  /** The session reports go to from now on; undefined once it closes (reports are then dropped, as before enrollment). */
  connect(session: SessionReports | undefined): void {
    this.session = session;
  }

  /** Local followers of the supervisor, told first, in the order added. */
  observe(observer: SupervisorObserver): void {
    this.observers.push(observer);
  }

  /** The supervisor's `onState`. */
  supervisorState(state: SupervisorState): void {
    for (const o of this.observers) o.onSupervisorState?.(state);
    this.session?.desired.onSupervisorState(state);
  }

  /** The supervisor's `onEvent`. */
  supervisorEvent(event: SupervisorEvent): void {
    for (const o of this.observers) o.onSupervisorEvent?.(event);
    this.opts.serviceEvent(event);
  }

  /** The supervisor's `onProven`: the session's desired channel keeps the signed message. */
  proven(version: string): void {
    this.session?.desired.onProven(version);
  }

  /** The pressure monitor's `onEvent`. */
  pressure(event: PressureEvent): void {
    this.opts.pressureEvent(event);
  }

  /** An image housekeeping event (`image-removed`, `gc`). */
  event(event: ImageEvent): void {
    this.session?.emitEvent(event);
  }

  /** The disk part of the retained state changed (an image collection ran). */
  diskChanged(): void {
    this.session?.desired.republish();
  }
}
