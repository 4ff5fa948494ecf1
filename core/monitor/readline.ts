/**
 * HMP's line editor (util/readline.c), with QEMU's echo: after every byte
 * the edited line is redrawn the way readline_update does it (cursor moved
 * back with ESC[D, the whole line written, ESC[K), so a client sees what
 * QEMU's monitor sends. Carriage return and line feed each end a line, as in
 * QEMU: a client that sends "\r\n" runs the command and then an empty line.
 *
 * Handled: printable characters, backspace/DEL, Ctrl-A/Ctrl-E (home/end),
 * Ctrl-D (delete), ESC [ A/B (history), ESC [ C/D (cursor), ESC [ H/F and
 * ESC O H/F (home/end), ESC [ 1~/4~/3~/7~/8~. Not handled: tab completion,
 * Ctrl-L, Ctrl-N/P and word deletion (the bytes are ignored).
 */

const CMD_BUF_SIZE = 4095;
const HISTORY_MAX = 64;

type EscState = 'norm' | 'esc' | 'csi' | 'ss3';

export class ReadLine {
  private buf = '';
  private index = 0;
  private lastBuf = '';
  private lastIndex = 0;
  private esc: EscState = 'norm';
  private escParam = 0;
  private readonly history: string[] = [];
  private historyIndex = -1;

  constructor(
    /** Output, one char per byte (the caller turns \n into \r\n). */
    private readonly print: (bytes: string) => void,
    /** A line was entered: its bytes, one char per byte. */
    private readonly onLine: (line: string) => void,
    readonly prompt = '(qemu) ',
  ) {}

  /** readline_show_prompt. */
  showPrompt(): void {
    this.print(this.prompt);
    this.lastBuf = '';
    this.lastIndex = 0;
    this.esc = 'norm';
  }

  /** readline_restart: a new client starts with an empty line (history stays). */
  restart(): void {
    this.buf = '';
    this.index = 0;
  }

  /** readline_handle_byte. True when the byte entered a line (onLine has run). */
  handleByte(ch: number): boolean {
    let entered = false;
    switch (this.esc) {
      case 'norm':
        entered = this.normal(ch);
        break;
      case 'esc':
        if (ch === 0x5b) {
          this.esc = 'csi';
          this.escParam = 0;
        } else if (ch === 0x4f) {
          this.esc = 'ss3';
          this.escParam = 0;
        } else {
          this.esc = 'norm';
        }
        break;
      case 'csi':
        this.csi(ch);
        break;
      case 'ss3':
        this.esc = 'norm';
        if (ch === 0x46) this.index = this.buf.length;
        else if (ch === 0x48) this.index = 0;
        break;
    }
    if (!entered) this.update();
    return entered;
  }

  private normal(ch: number): boolean {
    switch (ch) {
      case 1:
        this.index = 0;
        break;
      case 4:
        this.deleteChar();
        break;
      case 5:
        this.index = this.buf.length;
        break;
      case 10:
      case 13: {
        const line = this.buf;
        this.addHistory(line);
        this.print('\n');
        this.buf = '';
        this.index = 0;
        this.lastBuf = '';
        this.lastIndex = 0;
        this.onLine(line);
        return true;
      }
      case 27:
        this.esc = 'esc';
        break;
      case 8:
      case 127:
        if (this.index > 0) {
          this.buf = this.buf.slice(0, this.index - 1) + this.buf.slice(this.index);
          this.index--;
        }
        break;
      case 155:
        this.esc = 'csi';
        this.escParam = 0;
        break;
      default:
        if (ch >= 32 && this.buf.length < CMD_BUF_SIZE) {
          this.buf =
            this.buf.slice(0, this.index) + String.fromCharCode(ch) + this.buf.slice(this.index);
          this.index++;
        }
    }
    return false;
  }

  private csi(ch: number): void {
    if (ch >= 0x30 && ch <= 0x39) {
      this.escParam = this.escParam * 10 + (ch - 0x30);
      return;
    }
    this.esc = 'norm';
    switch (ch) {
      case 0x41:
        this.historyMove(1);
        break;
      case 0x42:
        this.historyMove(-1);
        break;
      case 0x43:
        if (this.index < this.buf.length) this.index++;
        break;
      case 0x44:
        if (this.index > 0) this.index--;
        break;
      case 0x46:
        this.index = this.buf.length;
        break;
      case 0x48:
        this.index = 0;
        break;
      case 0x7e:
        if (this.escParam === 1 || this.escParam === 7) this.index = 0;
        else if (this.escParam === 3) this.deleteChar();
        else if (this.escParam === 4 || this.escParam === 8) this.index = this.buf.length;
        break;
    }
  }

  private deleteChar(): void {
    if (this.index < this.buf.length) {
      this.buf = this.buf.slice(0, this.index) + this.buf.slice(this.index + 1);
    }
  }

  private addHistory(line: string): void {
    this.historyIndex = -1;
    if (line === '') return;
    const at = this.history.indexOf(line);
    if (at >= 0) this.history.splice(at, 1);
    this.history.push(line);
    if (this.history.length > HISTORY_MAX) this.history.shift();
  }

  /** Up (+1) goes back in time, down (-1) forward. */
  private historyMove(delta: number): void {
    if (this.history.length === 0) return;
    let i = this.historyIndex < 0 ? this.history.length : this.historyIndex;
    i -= delta;
    if (i < 0) i = 0;
    if (i >= this.history.length) {
      this.historyIndex = -1;
      this.buf = '';
    } else {
      this.historyIndex = i;
      this.buf = this.history[i]!;
    }
    this.index = this.buf.length;
  }

  /** readline_update: redraw what changed, QEMU's way. */
  private update(): void {
    let out = '';
    if (this.buf !== this.lastBuf) {
      out += '\x1b[D'.repeat(this.lastIndex);
      out += this.buf + '\x1b[K';
      this.lastBuf = this.buf;
      this.lastIndex = this.buf.length;
    }
    if (this.index !== this.lastIndex) {
      const delta = this.index - this.lastIndex;
      out += (delta > 0 ? '\x1b[C' : '\x1b[D').repeat(Math.abs(delta));
      this.lastIndex = this.index;
    }
    if (out !== '') this.print(out);
  }
}
