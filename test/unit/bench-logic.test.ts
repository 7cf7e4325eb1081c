import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replaceSection } from '../../bench/benchmarks-doc.js';
import { formatMeasured, verdict, type FigureResult } from '../../bench/figure.js';
import { parseBenchOptions } from '../../bench/options.js';
import { kbField, parseStatCpu } from '../../bench/proc-usage.js';
import { renderTable } from '../../bench/report-table.js';
import { median, quantile, summarize } from '../../bench/stats.js';

test('stats: median, interpolated quantiles and the spread', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(quantile([10, 20, 30, 40, 50], 0.99), 49.6);
  assert.equal(quantile([7], 0.99), 7);
  assert.deepEqual(summarize([5, 1, 9]), { median: 5, min: 1, max: 9, runs: 3 });
  assert.throws(() => median([]));
  assert.throws(() => quantile([1], 1.5));
});

const fig = (over: Partial<FigureResult>): FigureResult => ({
  key: 'k', title: 't', value: { summary: summarize([12, 10, 11]), unit: 'MB', digits: 1 }, ...over,
});

test('verdicts: on the judged value when there is one, else on the value; none without a target', () => {
  assert.equal(verdict(fig({})), 'reported');
  assert.equal(verdict(fig({ target: { op: '<=', limit: 11 } })), 'met');
  assert.equal(verdict(fig({ target: { op: '<', limit: 11 } })), 'missed');
  assert.equal(verdict(fig({ target: { op: '>=', limit: 11 } })), 'met');
  const judged = { label: 'ratio', value: { summary: summarize([1.3]), unit: '×', digits: 2 } };
  assert.equal(verdict(fig({ judged, target: { op: '<=', limit: 1.2 } })), 'missed');
  assert.equal(verdict(fig({ judged, target: { op: '<=', limit: 1.5 } })), 'met');
});

test('measured values print the median, then the spread and the number of runs', () => {
  assert.equal(formatMeasured({ summary: summarize([12, 10, 11]), unit: 'MB', digits: 1 }), '11.0 MB (10.0–12.0, n=3)');
  assert.equal(formatMeasured({ summary: summarize([0.25]), unit: '%', digits: 2 }), '0.25%');
  assert.equal(formatMeasured({ summary: summarize([1.1, 1.3]), unit: '×', digits: 2 }), '1.20× (1.10–1.30, n=2)');
});

test('the table has one line per figure, its verdict, and numbered notes', () => {
  const table = renderTable([
    fig({ title: 'rss', note: 'first note', baseline: { title: 'bare | node', value: { summary: summarize([40]), unit: 'MB', digits: 1 } }, target: { op: '<=', limit: 10 }, judged: { label: 'above', value: { summary: summarize([11]), unit: 'MB', digits: 1 } } }),
    fig({ title: 'size' }),
  ]);
  const lines = table.split('\n');
  assert.equal(lines.length, 6);
  assert.match(lines[2]!, /^\| rss \[1\] \| 11\.0 MB \(10\.0–12\.0, n=3\) \| bare \\\| node: 40\.0 MB \| above: 11\.0 MB \| ≤ 10 MB \| \*\*missed\*\* \|$/);
  assert.match(lines[3]!, /\| size \| .* \| — \| — \| — \| reported \|$/);
  assert.equal(lines[5], '1. first note');
});

test('a generated section replaces only itself, and is appended when new', () => {
  const doc = '# B\n\nprose\n<!-- bench:results:begin -->\nold\n<!-- bench:results:end -->\nmore prose\n<!-- bench:long:begin -->\nlong\n<!-- bench:long:end -->\n';
  const next = replaceSection(doc, 'results', 'new table');
  assert.equal(next, '# B\n\nprose\n<!-- bench:results:begin -->\nnew table\n<!-- bench:results:end -->\nmore prose\n<!-- bench:long:begin -->\nlong\n<!-- bench:long:end -->\n');
  assert.equal(replaceSection('# B\n', 'flags', 'x'), '# B\n\n<!-- bench:flags:begin -->\nx\n<!-- bench:flags:end -->\n');
});

test('options: defaults, --long, --only, and a partial run does not write the document', () => {
  const d = parseBenchOptions([]);
  assert.equal(d.windowMs, 5 * 60_000);
  assert.equal(d.write, true);
  assert.equal(d.only.size, 10);
  assert.equal(parseBenchOptions(['--long']).windowMs, 30 * 60_000);
  const some = parseBenchOptions(['--only', 'verify,bundle']);
  assert.deepEqual([...some.only].sort(), ['bundle', 'verify']);
  assert.equal(some.write, false);
  assert.equal(parseBenchOptions(['--window', '60']).write, false);
  assert.equal(parseBenchOptions(['--flags']).windowMs, 180_000);
  assert.throws(() => parseBenchOptions(['--only', 'nope']), /unknown figure group nope/);
  assert.throws(() => parseBenchOptions(['--window', '5']), /≥ 30/);
  assert.throws(() => parseBenchOptions(['--fast']), /unknown argument/);
});

test('/proc parsers: kB fields and CPU ticks, with a command name holding spaces and parentheses', () => {
  assert.equal(kbField('Name:\tnode\nVmRSS:\t   52340 kB\nRssAnon:\t 10 kB\n', 'VmRSS'), 52340 * 1024);
  assert.equal(kbField('Pss:  100 kB\n', 'VmRSS'), undefined);
  const stat = '1234 (node (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 12 3 20 0 11 0 5000 1000000 13000 18446744073709551615';
  assert.deepEqual(parseStatCpu(stat), { selfMs: 3250, childrenMs: 150 });
  assert.throws(() => parseStatCpu('1 (x) S 1'));
});
