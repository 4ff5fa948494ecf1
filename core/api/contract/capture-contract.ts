/**
 * The capture view's part of the contract (contract.ts spreads these into
 * its command union and result table): the packet list asks for windows of
 * rows (never all of them), one record's decoded fields and bytes, a port's
 * conversation (follow stream), and raw exports.
 *
 * Pure zod, like contract.ts, and it must not import contract.ts (the two
 * would form a cycle at module evaluation).
 */
import { z } from 'zod';

const Direction = z.enum(['host-to-guest', 'guest-to-host']);
const Path = z.string().min(1).max(4096);
/** A filter in the capture filter language (core/capture/filter.ts); empty: every record. */
const FilterText = z.string().max(4096);
/** A port as follow stream names it: number, name (`test1`) or guest node (`vport0p2`). */
const PortSelector = z.union([z.number().int().min(0).max(0xffffffff), z.string().min(1).max(256)]);

/** A port as contract.ts names one (device, nr); repeated here to keep the two files apart. */
const PortRef = z.object({
  device: z.string().min(1).max(128),
  nr: z.number().int().min(0).max(0xfffffffe),
});

/** The list's sortable columns. */
export const SortColumn = z.enum(['number', 'time', 'port', 'dir', 'kind', 'length']);
export type SortColumn = z.infer<typeof SortColumn>;
/** Matched records a sort by a column other than number/time may order (a bounded sort). */
export const MAX_SORTED_ROWS = 1_000_000;

/** Series one IO graph may draw. */
export const MAX_IO_SERIES = 6;
/** Intervals one IO graph may have (a finer interval over a long capture is widened to fit). */
export const MAX_IO_BUCKETS = 2000;
/** Matches one findInFollow lists. */
export const MAX_FIND_MATCHES = 1000;

/** Rows a single getCaptureRows may ask for. */
export const MAX_ROWS_PER_REQUEST = 1000;
/** Bytes of one record the detail answer carries (the hex pane). */
export const MAX_DETAIL_BYTES = 64 * 1024;
/** Bytes of a conversation the follow answer carries for display. */
export const MAX_FOLLOW_BYTES = 1024 * 1024;

export const CaptureViewStateSchema = z.object({
  path: z.string(),
  /** Records in the file now (grows while a live capture is followed). */
  records: z.number().int(),
  /** Whether the file is the one being captured to right now. */
  live: z.boolean(),
});
export type CaptureViewState = z.infer<typeof CaptureViewStateSchema>;

/** Extra fields of saveCapture: what to save (the live/last capture file, or the open view). */
export const SaveCaptureOptionsShape = {
  /** `last`: copy the running or last capture file; `view`: the capture open in the view. Default: last when there is one. */
  source: z.enum(['last', 'view']).optional(),
  /** Save only the records this filter matches (source `view`). */
  filter: FilterText.optional(),
  /**
   * Save only these records, by number (1-based; source `view`): Wireshark's
   * Export Specified Packets, "selected". Out-of-range numbers are refused.
   */
  records: z.array(z.number().int().min(1)).min(1).max(100_000).optional(),
};

export const CaptureViewCommands = [
  /** A window of the list: positions [from, from+count) of the records the filter matches. */
  z.object({
    cmd: z.literal('getCaptureRows'),
    from: z.number().int().min(0),
    count: z.number().int().min(0).max(MAX_ROWS_PER_REQUEST),
    filter: FilterText.optional(),
    /**
     * The list's order (a column header clicked): by number (= time) either way
     * for any size; by another column for at most MAX_SORTED_ROWS matched records.
     */
    sort: z.object({ column: SortColumn, descending: z.boolean() }).optional(),
  }),
  /** One record decoded (number is 1-based, tshark's frame.number). */
  z.object({ cmd: z.literal('getCaptureRecord'), number: z.number().int().min(1) }),
  /** A port's conversation, both directions in order. */
  z.object({
    cmd: z.literal('followCapture'),
    device: z.string().min(1).max(128).optional(),
    port: PortSelector,
  }),
  /** All the bytes one direction of a port carried, to a file. */
  z.object({
    cmd: z.literal('saveFollowRaw'),
    device: z.string().min(1).max(128).optional(),
    port: PortSelector,
    direction: Direction,
    path: Path,
  }),
  /** Close the capture open in the view. */
  z.object({ cmd: z.literal('closeCapture') }),
  /**
   * Find in Follow stream: `text` in a port's reassembled bytes (per
   * direction), with the records holding each match.
   */
  z.object({
    cmd: z.literal('findInFollow'),
    device: z.string().min(1).max(128).optional(),
    port: PortSelector,
    text: z.string().min(1).max(1024),
    direction: Direction.optional(),
  }),
  /**
   * Wireshark's IO Graph: bytes or records per interval over the capture
   * file, one series per display filter ('' is every record).
   */
  z.object({
    cmd: z.literal('captureIoGraph'),
    interval: z.number().min(0.001).max(3600),
    metric: z.enum(['bytes', 'records']),
    filters: z.array(FilterText).min(1).max(MAX_IO_SERIES),
  }),
] as const;

/**
 * The capture switches (core/capture/record.ts `Capture`): each port's own,
 * and the global one that ports without their own follow. They can be set
 * before a capture starts (they apply from its first record) or while it
 * runs, and they stay for the next capture of the same lab.
 */
export const CaptureSwitchCommands = [
  /** A port's own switch: on, off, or null to follow the global switch again. */
  z.object({ cmd: z.literal('setPortCapture'), port: PortRef, on: z.boolean().nullable() }),
  /** The global switch: capture every port that has no switch of its own, or none of them. */
  z.object({ cmd: z.literal('setCaptureAll'), on: z.boolean() }),
] as const;

/** A port's capture switch, as the port snapshot carries it. */
export const PortCaptureSchema = z.object({
  /** The port's own switch; null: it follows the global switch. */
  own: z.boolean().nullable(),
  /** Whether its records are written (while a capture runs): own, else the global switch. */
  on: z.boolean(),
});
export type PortCapture = z.infer<typeof PortCaptureSchema>;

export const CaptureSwitchResults = {
  setPortCapture: z.object({
    device: z.string(),
    nr: z.number().int(),
    capture: PortCaptureSchema,
  }),
} as const;

export const CaptureListRowSchema = z.object({
  /** 1-based record number (tshark's frame.number). */
  number: z.number().int().min(1),
  /** Seconds since the first record. */
  rel: z.number(),
  kind: z.string(),
  port: z.string().nullable(),
  direction: Direction.nullable(),
  length: z.number().int(),
  summary: z.string(),
  /** The Protocol column: the channel protocol a data record decodes as (qga, text...), else the kind. */
  protocol: z.string().optional(),
});
export type CaptureListRow = z.infer<typeof CaptureListRowSchema>;

export const CaptureRowsSchema = z.object({
  path: z.string(),
  /** Records in the capture. */
  total: z.number().int(),
  /** Records the filter matches (= total without a filter): the list's length. */
  matched: z.number().int(),
  /** The filter as applied ('' for none). */
  filter: z.string(),
  from: z.number().int(),
  rows: z.array(CaptureListRowSchema),
  /**
   * A filter still running over the capture (it runs in slices between
   * other commands): records [0, scanned) of `records` tested so far. The
   * rows and `matched` are those found up to there; matched only grows.
   * Null (or absent) once the whole capture was tested.
   */
  scanning: z
    .object({ scanned: z.number().int(), records: z.number().int() })
    .nullable()
    .optional(),
});
export type CaptureRows = z.infer<typeof CaptureRowsSchema>;

export const CaptureFieldSchema = z.object({ name: z.string(), value: z.string() });
export type CaptureField = z.infer<typeof CaptureFieldSchema>;

export const CaptureRecordDetailSchema = z.object({
  number: z.number().int(),
  kind: z.string(),
  device: z.string(),
  /** The port number the record concerns, when it concerns one. */
  port: z.number().int().nullable(),
  portLabel: z.string().nullable(),
  direction: Direction.nullable(),
  rel: z.number(),
  /** Exact time, ns since the epoch, as a decimal string. */
  timeNs: z.string(),
  length: z.number().int(),
  summary: z.string(),
  /** Decoded fields in order (kind, port, direction, time, length, control fields, event text...). */
  fields: z.array(CaptureFieldSchema),
  /** hexDump of the captured bytes (at most MAX_DETAIL_BYTES of them). */
  hex: z.string(),
  /** Captured bytes, base64 (at most MAX_DETAIL_BYTES). */
  bytes: z.string(),
  captured: z.number().int(),
  hexTruncated: z.boolean(),
  /** The channel protocol's subtree of the detail pane (as tshark -V and vmchan read -V show it). */
  decoded: z
    .object({
      protocol: z.string(),
      title: z.string(),
      summary: z.string(),
      fields: z.array(z.object({ name: z.string(), label: z.string(), value: z.string() })),
    })
    .nullable()
    .optional(),
});
export type CaptureRecordDetail = z.infer<typeof CaptureRecordDetailSchema>;

export const FollowRunSchema = z.object({
  direction: Direction,
  /** The bytes as text: newlines kept, other non-printable bytes as '.'. */
  text: z.string(),
  bytes: z.number().int(),
});
export type FollowRun = z.infer<typeof FollowRunSchema>;

export const FollowResultSchema = z.object({
  label: z.string(),
  device: z.string(),
  port: z.number().int().nullable(),
  hostToGuest: z.number().int(),
  guestToHost: z.number().int(),
  segments: z.number().int(),
  /** Consecutive same-direction bytes, in order (cut at MAX_FOLLOW_BYTES). */
  runs: z.array(FollowRunSchema),
  /** followHex of the same bytes. */
  hex: z.string(),
  /** The display was cut (the raw export still has every byte). */
  truncated: z.boolean(),
});
export type FollowResult = z.infer<typeof FollowResultSchema>;

export const FollowFindSchema = z.object({
  matches: z.array(
    z.object({
      direction: Direction,
      /** Byte offset in that direction's reassembled stream. */
      offset: z.number().int(),
      /** Record numbers (1-based) holding the match, first to last. */
      records: z.array(z.number().int().min(1)),
    }),
  ),
  /** More than MAX_FIND_MATCHES were found. */
  more: z.boolean(),
});
export type FollowFindResult = z.infer<typeof FollowFindSchema>;

export const IoGraphSchema = z.object({
  /** Seconds per interval (may be wider than asked: at most MAX_IO_BUCKETS intervals). */
  interval: z.number(),
  metric: z.enum(['bytes', 'records']),
  /** Intervals, from the first record's time. */
  buckets: z.number().int(),
  series: z.array(z.object({ filter: z.string(), values: z.array(z.number()), total: z.number() })),
});
export type IoGraph = z.infer<typeof IoGraphSchema>;

export const CaptureViewResults = {
  findInFollow: FollowFindSchema,
  captureIoGraph: IoGraphSchema,
  getCaptureRows: CaptureRowsSchema,
  getCaptureRecord: CaptureRecordDetailSchema,
  followCapture: FollowResultSchema,
  saveFollowRaw: z.object({ path: z.string(), bytes: z.number().int() }),
  closeCapture: z.object({}),
} as const;
