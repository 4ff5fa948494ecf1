/**
 * The capture list's rows, fetched from the service in pages as the list
 * shows them (getCaptureRows: a window, never the whole capture) and kept
 * in a small cache per filter. One request is in flight at a time; while it
 * runs, newer wishes replace older ones, so a fast scroll asks only for
 * where it stopped.
 *
 * A filter over a large capture runs on the service in slices: while an
 * answer says `scanning`, the cache asks again every POLL_MS (the pages cut
 * short at the end of what matched so far, or the first page in view), so
 * the count and the rows grow as the scan goes.
 */
import type {
  CaptureListRow,
  CaptureRows,
  SortColumn,
} from '../../../core/api/contract/capture-contract.js';

export interface ListSort {
  column: SortColumn;
  descending: boolean;
}
import type { CommandInputOf, Result } from '../../../core/api/contract/contract.js';

export const PAGE_ROWS = 200;
const MAX_PAGES = 120;
/** How often a scanning filter is asked again (ms). */
const POLL_MS = 150;

type Fetch = (c: CommandInputOf<'getCaptureRows'>) => Promise<Result<CaptureRows>>;

interface Page {
  rows: CaptureListRow[];
  used: number;
}

export class RowCache {
  /** Bumped when rows arrive (the list re-reads them). */
  version = $state(0);
  /** Rows the filter matches (the list's length); null until the service said. */
  matched = $state<number | null>(null);
  /** The filter as the service applied it. */
  applied = $state('');
  error = $state<string | null>(null);
  loading = $state(false);
  /** How far the service's scan of the filter got (null: done, or no filter). */
  scanning = $state<NonNullable<CaptureRows['scanning']> | null>(null);

  private filter = '';
  /** The list's order (null: by number, ascending: the file's order). */
  sort = $state.raw<ListSort | null>(null);
  // Plain on purpose: the list re-reads rows when `version` moves.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private pages = new Map<number, Page>();
  private wanted: [number, number] = [0, 0];
  private busy = false;
  private clock = 0;
  /** Ask for a page in view even though it is there (a scan moved on). */
  private again = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly fetch: Fetch) {}

  /** Start over with another filter (or the same capture reopened). */
  reset(filter: string, total: number | null): void {
    this.filter = filter.trim();
    this.pages.clear();
    this.matched = this.filter === '' ? total : null;
    this.scanning = null;
    this.again = false;
    this.error = null;
    this.version++;
    this.pump();
  }

  /** Another order: the pages start over (the filter stays). */
  setSort(sort: ListSort | null): void {
    this.sort = sort;
    this.pages.clear();
    this.error = null;
    this.version++;
    this.pump();
  }

  /** The capture grew: pages cut short at the old end are asked again. */
  grew(total: number): void {
    // Unfiltered, the count is the file's. Filtered, only the service knows it:
    // ask again even when nothing matched so far (no page is then missing).
    if (this.filter === '') this.matched = total;
    else this.again = true;
    // in the file's order only the last page changes; in any other, every position may move
    if (this.sort !== null) this.pages.clear();
    for (const [k, p] of this.pages) if (p.rows.length < PAGE_ROWS) this.pages.delete(k);
    this.version++;
    this.pump();
  }

  /** Row at list position `pos`, if fetched (reading it ties the caller to `version`). */
  row(pos: number): CaptureListRow | undefined {
    void this.version;
    const p = this.pages.get(Math.floor(pos / PAGE_ROWS));
    if (p === undefined) return undefined;
    p.used = ++this.clock;
    return p.rows[pos % PAGE_ROWS];
  }

  /** The list shows positions [from, to): fetch what is missing. */
  want(from: number, to: number): void {
    this.wanted = [from, to];
    this.pump();
  }

  private missing(): number | null {
    const [from, to] = this.wanted;
    const end = this.matched === null ? Math.max(to, from + 1) : Math.min(to, this.matched);
    for (let pos = from; pos < end; pos += PAGE_ROWS - (pos % PAGE_ROWS)) {
      const k = Math.floor(pos / PAGE_ROWS);
      if (!this.pages.has(k)) return k;
    }
    return null;
  }

  private pump(): void {
    if (this.busy) return;
    let k = this.missing();
    if (k === null && this.again) k = Math.floor(this.wanted[0] / PAGE_ROWS);
    this.again = false;
    if (k === null) {
      this.loading = this.scanning !== null;
      return;
    }
    this.busy = true;
    this.loading = true;
    const filter = this.filter;
    const sort = this.sort;
    void this.fetch({
      cmd: 'getCaptureRows',
      from: k * PAGE_ROWS,
      count: PAGE_ROWS,
      ...(filter !== '' ? { filter } : {}),
      ...(sort !== null ? { sort } : {}),
    }).then((r) => {
      this.busy = false;
      // the filter or the order changed meanwhile
      if (filter !== this.filter || sort !== this.sort) return this.pump();
      if (!r.ok) {
        this.error = r.error.message;
        this.loading = false;
        return;
      }
      this.error = null;
      this.matched = r.value.matched;
      this.applied = r.value.filter;
      this.scanning = r.value.scanning ?? null;
      this.pages.set(k, { rows: r.value.rows, used: ++this.clock });
      this.evict();
      this.version++;
      if (this.scanning !== null) this.poll();
      this.pump();
    });
  }

  /** A scan is under way: ask again in a moment for what it found since. */
  private poll(): void {
    if (this.timer !== null) return;
    const filter = this.filter;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.scanning === null || filter !== this.filter) return;
      // Pages cut short at the end of what matched may have more rows now.
      for (const [k, p] of this.pages) if (p.rows.length < PAGE_ROWS) this.pages.delete(k);
      this.again = true;
      this.pump();
    }, POLL_MS);
  }

  private evict(): void {
    if (this.pages.size <= MAX_PAGES) return;
    const byAge = [...this.pages].sort((a, b) => a[1].used - b[1].used);
    for (const [k] of byAge.slice(0, this.pages.size - MAX_PAGES)) this.pages.delete(k);
  }
}
