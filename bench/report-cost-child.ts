// Runs the report-cost figure in a process of its own, started by the bench
// under the agent's node flags and environment: reads its input as JSON on
// stdin, writes the figure as JSON on stdout.
import { text } from 'node:stream/consumers';
import { measureReportCostHere, type ReportCostInput } from './figures/report-cost.js';

const input = JSON.parse(await text(process.stdin)) as ReportCostInput;
process.stdout.write(JSON.stringify(await measureReportCostHere(input)));
process.exit(0);
