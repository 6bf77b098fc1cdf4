/**
 * Tables for the terminal. `gridTable` draws the seed's `list` table character for character:
 *
 *   +---------------+-------------+--------------------------------------+
 *   | Endpoint Name |   Status    |             Endpoint ID              |
 *   +===============+=============+======================================+
 *   | default       | Active      | 1e999502-b434-49a2-a2e0-d925383d2dd4 |
 *   +---------------+-------------+--------------------------------------+
 *
 * Headers are centered (an odd leftover space goes right), cells left-aligned, one space of padding, and
 * columns as wide as their widest cell: nothing is wrapped or cut (ids are copied and pasted).
 * `plainTable` is the borderless form `status` uses.
 */

/** How cells of a column are placed. @default 'left' */
export type Align = 'left' | 'center' | 'right';

export interface TableOptions {
  /** Alignment of the body cells of each column. @default every column 'left' */
  align?: Align[];
}

function pad(text: string, width: number, align: Align): string {
  const room = width - text.length;
  if (room <= 0) return text;
  if (align === 'right') return ' '.repeat(room) + text;
  if (align === 'center') {
    const left = Math.floor(room / 2);
    return ' '.repeat(left) + text + ' '.repeat(room - left);
  }
  return text + ' '.repeat(room);
}

function widths(headers: string[], rows: string[][]): number[] {
  return headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
}

/** A bordered table with the seed's `+---+` / `+===+` rules; returns its lines. */
export function gridTable(headers: string[], rows: string[][], options: TableOptions = {}): string[] {
  const w = widths(headers, rows);
  const rule = (ch: string): string => '+' + w.map((n) => ch.repeat(n + 2)).join('+') + '+';
  const line = (cells: string[], align: (i: number) => Align): string =>
    '|' + w.map((n, i) => ` ${pad(cells[i] ?? '', n, align(i))} `).join('|') + '|';
  const out = [rule('-'), line(headers, () => 'center'), rule('=')];
  for (const row of rows) {
    out.push(line(row, (i) => options.align?.[i] ?? 'left'));
    out.push(rule('-'));
  }
  return out;
}

/** A borderless table: a header line and rows, columns two spaces apart, no trailing spaces. */
export function plainTable(headers: string[], rows: string[][], options: TableOptions = {}): string[] {
  const w = widths(headers, rows);
  const line = (cells: string[], align: (i: number) => Align): string =>
    w.map((n, i) => pad(cells[i] ?? '', n, align(i))).join('  ').trimEnd();
  return [line(headers, () => 'left'), ...rows.map((r) => line(r, (i) => options.align?.[i] ?? 'left'))];
}
