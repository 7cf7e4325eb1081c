import { formatMeasured, formatTarget, verdict, type FigureResult } from './figure.js';

const VERDICT_TEXT = { met: 'met', missed: '**missed**', reported: 'reported' } as const;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * The figures as a Markdown table, one line each, with numbered notes under
 * it. Printed as is on the console: Markdown tables read well as text.
 */
export function renderTable(figures: readonly FigureResult[]): string {
  const rows = ['| figure | measured | baseline, same run | judged | target | verdict |', '| --- | --- | --- | --- | --- | --- |'];
  const notes: string[] = [];
  for (const f of figures) {
    let title = f.title;
    if (f.note !== undefined) {
      notes.push(f.note);
      title += ` [${notes.length}]`;
    }
    const baseline = f.baseline === undefined ? '—' : `${f.baseline.title}: ${formatMeasured(f.baseline.value)}`;
    const judged = f.judged === undefined ? '—' : `${f.judged.label}: ${formatMeasured(f.judged.value)}`;
    const unit = (f.judged ?? f).value.unit;
    rows.push(`| ${[title, formatMeasured(f.value), baseline, judged, formatTarget(f.target, unit), VERDICT_TEXT[verdict(f)]].map(cell).join(' | ')} |`);
  }
  return [...rows, '', ...notes.map((n, i) => `${i + 1}. ${n}`)].join('\n').trimEnd();
}
