/** One figure of the table: claudebox's value beside its baseline's, and what must hold. */
export interface Row {
  readonly figure: string;
  readonly claudebox: number;
  readonly baseline: number;
  /** Renders a value (of either column) with its unit. */
  readonly format: (value: number) => string;
  /** ratio = claudebox / baseline must be at most (<=) or at least (>=) this. */
  readonly target?: { readonly op: '<=' | '>='; readonly ratio: number };
}

const cell = (text: string): string => text.replaceAll('|', '\\|');

/** The table as Markdown, so that it can be pasted into the README as printed. */
export function renderTable(rows: readonly Row[]): string {
  const lines = [
    '| figure | claudebox | baseline | ratio | target | |',
    '|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const ratio = row.claudebox / row.baseline;
    const { target } = row;
    const holds =
      target === undefined
        ? ''
        : (target.op === '<=' ? ratio <= target.ratio : ratio >= target.ratio)
          ? 'pass'
          : 'FAIL';
    const wanted = target === undefined ? '' : `${target.op === '<=' ? '≤' : '≥'} ${target.ratio}×`;
    const values = [row.figure, row.format(row.claudebox), row.format(row.baseline)];
    lines.push(`| ${[...values, `${ratio.toFixed(2)}×`, wanted, holds].map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

export const perSecond = (value: number): string =>
  `${value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en')}/s`;
export const milliseconds = (value: number): string => `${value.toFixed(2)} ms`;
export const megabytes = (value: number): string => `${(value / 1e6).toFixed(2)} MB`;
