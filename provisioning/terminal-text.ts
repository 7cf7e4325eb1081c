/**
 * Text from devices (service names, error messages, container logs) shown on
 * the operator's terminal. A compromised device could embed escape sequences
 * that move the cursor, rewrite earlier lines, set the window title or, on
 * some terminals, answer back as keystrokes. Every C0/C1 control character
 * except newline and tab is shown as a visible escape instead (`\x1b`), the
 * way `cat -v` does it. JSON output needs none of this: JSON.stringify
 * escapes control characters itself.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

export function printable(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  // Cells hold what devices claimed (serials, models): shown, never obeyed as escapes.
  process.stdout.write(`${[line(header), ...rows.map(line)].map(printable).join('\n')}\n`);
}
