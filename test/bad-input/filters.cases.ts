/** Bad capture filters (issue 13 corpus): each with words its one-line error must contain. */
export interface FilterCase {
  filter: string;
  /** Matched against the message after `filter error at column N: `. */
  message: RegExp;
}

const FIELDS = ['port', 'dir', 'kind', 'len', 'time', 'device'] as const;
const NUMERIC = ['len', 'time'] as const;
const GOOD: Record<(typeof FIELDS)[number], string> = {
  port: '1',
  dir: 'h2g',
  kind: 'data',
  len: '1',
  time: '1',
  device: 'vser0',
};

export const FILTER_CASES: FilterCase[] = [
  ...FIELDS.map((f) => ({
    filter: f,
    message: new RegExp(`^expected an operator .* after '${f}'$`),
  })),
  ...FIELDS.map((f) => ({ filter: `${f} ==`, message: /^expected a value after '=='$/ })),
  ...FIELDS.map((f) => ({
    filter: `${f} = x`,
    message: /^a single '=' is not an operator: use '=='$/,
  })),
  ...FIELDS.map((f) => ({
    filter: `(${f} == ${GOOD[f]}`,
    message: /^expected '\)' to close the '\(' at column 1/,
  })),
  ...FIELDS.map((f) => ({
    filter: `${f} == ${GOOD[f]} and`,
    message: /^expected a condition after 'and'/,
  })),
  ...FIELDS.map((f) => ({
    filter: `${f} == ${GOOD[f]} or`,
    message: /^expected a condition after 'or'/,
  })),
  ...FIELDS.map((f) => ({ filter: `not ${f}`, message: /^expected an operator/ })),
  ...NUMERIC.flatMap((f) =>
    ['abc', '-', '"x"', 'h2g'].map((v) => ({
      filter: `${f} > ${v}`,
      message: /^expected a number after '>'|is a whole number|needs a number|not a number/,
    })),
  ),
  { filter: 'len > 1.5', message: /^a length is a whole number of bytes, not '1\.5'$/ },
  {
    filter: 'port > test1',
    message: /^'>' needs a port number; port names compare with == or !=$/,
  },
  ...['sideways', 'up', '1', 'h2h'].map((v) => ({
    filter: `dir == ${v}`,
    message: new RegExp(`^unknown direction '${v}' \\(h2g, g2h, host-to-guest, guest-to-host\\)$`),
  })),
  ...['<', '<=', '>', '>='].map((op) => ({
    filter: `dir ${op} h2g`,
    message: new RegExp(`^directions compare with == or !=, not '${op}'$`),
  })),
  ...['packet', 'frame', 'x'].map((v) => ({
    filter: `kind == ${v}`,
    message: new RegExp(`^unknown kind '${v}' \\(data, control, event, ring\\)$`),
  })),
  ...['prot', 'lenght', 'foo', 'ports', 'direction2'].map((f) => ({
    filter: `${f} == 1`,
    message: new RegExp(`^unknown field '${f}'`),
  })),
  { filter: 'port == 1 & len > 2', message: /^a single '&' is not an operator: use '&&'$/ },
  { filter: 'port == 1 | len > 2', message: /^a single '\|' is not an operator: use '\|\|'$/ },
  { filter: 'port == 1 len > 1', message: /^unexpected 'len' after a complete condition/ },
  { filter: ')', message: /^unexpected '\)'|expected/ },
  { filter: 'port == 1)', message: /^unexpected '\)' without a matching '\('$/ },
  { filter: '()', message: /^expected a condition after '\('$/ },
  { filter: 'and', message: /^expected a condition|unexpected 'and'/ },
  { filter: 'or port == 1', message: /^expected a condition|unexpected 'or'/ },
  { filter: 'not', message: /^expected a condition/ },
  { filter: 'contains', message: /^expected .* after 'contains'|contains needs/ },
  { filter: 'contains ""', message: /^contains needs at least one byte$/ },
  { filter: 'contains zz', message: /hex|byte|quote/ },
  { filter: 'contains 0', message: /hex|byte|quote/ },
  { filter: 'contains "unterminated', message: /unterminated|closing|quote/ },
  { filter: 'port == "unterminated', message: /unterminated|closing|quote/ },
  { filter: 'port == "\\q"', message: /escape/ },
  { filter: 'port == 1 @', message: /'@'|character/ },
  { filter: '#', message: /'#'|character/ },
  { filter: 'port !', message: /'!'|operator/ },
  {
    filter: `${'('.repeat(5000)}port == 1${')'.repeat(5000)}`,
    message: /more than 256 levels deep$/,
  },
  { filter: `${'not '.repeat(40_000)}port == 1`, message: /more than 256 levels deep$/ },
  { filter: `${'!'.repeat(40_000)}port == 1`, message: /more than 256 levels deep$|'!'/ },
  {
    filter: Array.from({ length: 20_000 }, () => 'len > 1').join(' || '),
    message: /^the filter joins more than 4096 conditions with 'and'\/'or'$/,
  },
];
