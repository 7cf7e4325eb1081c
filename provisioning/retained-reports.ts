import type * as z from 'zod/mini';
import { ReportedStateSchema } from '../protocol/desired.js';
import { asTsunaguError } from '../protocol/errors.js';
import { checkSchema, DEFAULT_JSON_LIMITS, parseJsonBytes, type JsonLimits } from '../protocol/json.js';
import { InventoryReportSchema, MetricsReportSchema } from '../protocol/reports.js';
import { STATUS_LIMITS } from '../protocol/status.js';

export const RETAINED_REPORT_KINDS = ['status', 'inventory', 'metrics', 'state'] as const;
export type RetainedReportKind = (typeof RETAINED_REPORT_KINDS)[number];

/** Reports every device online sends: their absence is worth a word. A state only exists once something was deployed. */
const EXPECTED: readonly RetainedReportKind[] = ['inventory', 'metrics'];

const READERS: Record<RetainedReportKind, { limits: JsonLimits; schema?: z.ZodMiniType }> = {
  status: { limits: STATUS_LIMITS },
  inventory: { limits: DEFAULT_JSON_LIMITS, schema: InventoryReportSchema },
  metrics: { limits: DEFAULT_JSON_LIMITS, schema: MetricsReportSchema },
  state: { limits: DEFAULT_JSON_LIMITS, schema: ReportedStateSchema },
};

export interface JudgedReports {
  /** The reports that were received and read. */
  reports: Partial<Record<RetainedReportKind, unknown>>;
  /** Why a report is not shown: unreadable (with the error), or none received. */
  unavailable: Partial<Record<RetainedReportKind, string>>;
}

/**
 * Read the retained reports of one device as a fleet tool received them,
 * within the protocol's limits. Nothing is left out silently: a report that
 * came and cannot be read, or an expected one that did not come, is named
 * with the reason. `packetLimit` is the Maximum Packet Size the tool
 * announced (MQTT 5): a broker does not deliver a larger retained message,
 * which then looks exactly like none.
 */
export function judgeRetainedReports(received: Partial<Record<RetainedReportKind, Buffer>>, packetLimit: number | undefined): JudgedReports {
  const out: JudgedReports = { reports: {}, unavailable: {} };
  for (const kind of RETAINED_REPORT_KINDS) {
    const payload = received[kind];
    if (payload === undefined || payload.length === 0) {
      if (EXPECTED.includes(kind)) {
        out.unavailable[kind] = `none received: the device has not sent one since the broker last started${packetLimit === undefined ? '' : `, or it is larger than the ${packetLimit}-byte packet limit of this tool and the broker did not deliver it`}`;
      }
      continue;
    }
    const reader = READERS[kind];
    try {
      const value = parseJsonBytes(new Uint8Array(payload), reader.limits);
      out.reports[kind] = reader.schema === undefined ? value : checkSchema(reader.schema, value, kind);
    } catch (err) {
      const e = asTsunaguError(err);
      out.unavailable[kind] = `unreadable (${payload.length} bytes): ${e.code}: ${e.message}`;
    }
  }
  return out;
}
