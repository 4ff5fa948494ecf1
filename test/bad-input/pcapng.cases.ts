/**
 * Damaged pcapng files (issue 13 corpus), made from one good capture: each
 * a mutation and the words our reader must say about it, as an error (the
 * file cannot be read) or as a warning (read up to the damage).
 */
export interface Blocks {
  good: Buffer;
  shb: { off: number; len: number };
  idb: { off: number; len: number };
  epb: { off: number; len: number };
}

export interface PcapngCase {
  name: string;
  make: (b: Blocks) => Buffer;
  message: RegExp;
}

const set32 = (buf: Buffer, at: number, v: number): Buffer => {
  const b = Buffer.from(buf);
  b.writeUInt32LE(v >>> 0, at);
  return b;
};
const set16 = (buf: Buffer, at: number, v: number): Buffer => {
  const b = Buffer.from(buf);
  b.writeUInt16LE(v, at);
  return b;
};

/** Cut the file at every 20th byte: a section header, then blocks cut in their middle. */
const CUTS = Array.from({ length: 30 }, (_, i) => 1 + i * 20);

export const PCAPNG_CASES: PcapngCase[] = [
  { name: 'empty', make: () => Buffer.alloc(0), message: /not a pcapng file: the file is empty$/ },
  {
    name: 'classic pcap',
    make: () => Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex'),
    message: /classic pcap file; convert it with `editcap -F pcapng IN OUT`/,
  },
  {
    name: 'text',
    make: () => Buffer.from('hello, this is not a capture\n'),
    message: /not a pcapng file: /,
  },
  ...CUTS.map((n) => ({
    name: `cut after ${n} bytes`,
    make: (b: Blocks) => b.good.subarray(0, n),
    message: /not a pcapng file: |truncated block at offset \d+|section header/,
  })),
  {
    name: 'bad byte-order magic',
    make: (b) => set32(b.good, 8, 0x12345678),
    message: /bad byte-order magic 0x12345678$/,
  },
  {
    name: 'pcapng 2.0',
    make: (b) => set16(b.good, 12, 2),
    message: /pcapng version 2\.0; only 1\.0 \(and 1\.2\) is understood$/,
  },
  {
    name: 'pcapng 1.9',
    make: (b) => set16(b.good, 14, 9),
    message: /pcapng version 1\.9; only 1\.0 \(and 1\.2\) is understood$/,
  },
  {
    name: 'length not a multiple of 4',
    make: (b) => set32(b.good, b.epb.off + 4, b.epb.len + 1),
    message: /impossible length \d+$/,
  },
  {
    name: 'length below a block header',
    make: (b) => set32(b.good, b.epb.off + 4, 8),
    message: /impossible length 8$/,
  },
  {
    name: 'length of 2 GB',
    make: (b) => set32(b.good, b.epb.off + 4, 0x7ffffff0),
    message: /the block says 2147483632 bytes/,
  },
  {
    name: 'trailing length differs',
    make: (b) => set32(b.good, b.epb.off + b.epb.len - 4, b.epb.len + 4),
    message: /trailing length \d+ does not match leading length \d+$/,
  },
  {
    name: 'packet on interface 99',
    make: (b) => set32(b.good, b.epb.off + 8, 99),
    message: /names interface 99, which no interface block described$/,
  },
  {
    name: 'captured length past the block',
    make: (b) => set32(b.good, b.epb.off + 20, 5000),
    message: /5000 captured bytes do not fit in a \d+-byte block$/,
  },
  {
    name: 'interface option past the block',
    make: (b) => set16(b.good, b.idb.off + 16 + 2, 500),
    message:
      /interface block at offset \d+: option \d+ of length 500 runs past the end of the block$/,
  },
  {
    name: '3 bytes of garbage at the end',
    make: (b) => Buffer.concat([b.good, Buffer.from([1, 2, 3])]),
    message: /3 bytes left, a block needs at least 12$/,
  },
  {
    name: '16 zero bytes at the end',
    make: (b) => Buffer.concat([b.good, Buffer.alloc(16)]),
    message: /impossible length 0$/,
  },
  {
    name: 'a packet before any interface',
    make: (b) =>
      Buffer.concat([
        b.good.subarray(0, b.shb.len),
        b.good.subarray(b.epb.off, b.epb.off + b.epb.len),
      ]),
    message: /names interface \d+, which no interface block described$/,
  },
  {
    name: 'a second section in the other byte order, cut',
    make: (b) => {
      const shb = Buffer.from(b.good.subarray(0, b.shb.len));
      shb.writeUInt32BE(0x1a2b3c4d, 8);
      return Buffer.concat([b.good, shb]);
    },
    message: /truncated block at offset \d+|impossible length|section/,
  },
];
