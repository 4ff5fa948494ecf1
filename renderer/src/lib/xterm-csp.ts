/**
 * xterm.js under the app's Content-Security-Policy (core/api/server/csp.ts:
 * `style-src 'self'`, no inline styles): xterm's DOM renderer and viewport
 * put their computed CSS (cell sizes, theme colours, scrollbar) into
 * `<style>` elements, which the policy blocks. While `term.open()` runs
 * (where xterm makes all three), `document.createElement('style')` hands
 * out an inert stand-in whose text goes into a constructed stylesheet
 * adopted by the document instead: CSSOM, which the policy allows. Element
 * styles xterm sets through `element.style` are CSSOM too.
 *
 * Not covered: 24-bit colour (SGR 38;2 / 48;2) makes xterm write a `style`
 * attribute, which the policy blocks (the text shows, without that colour).
 */
import type { Terminal } from '@xterm/xterm';

/** Open `term` in `parent` without inline styles; returns the undo (removes the sheets). */
export function openUnderCsp(term: Terminal, parent: HTMLElement): () => void {
  const doc = parent.ownerDocument;
  const sheets: CSSStyleSheet[] = [];
  const original = doc.createElement.bind(doc);
  const standIn = (): HTMLElement => {
    const sheet = new CSSStyleSheet();
    sheets.push(sheet);
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
    const el = original('template');
    el.dataset['xtermStyle'] = '';
    let text = '';
    Object.defineProperty(el, 'textContent', {
      configurable: true,
      get: () => text,
      set: (value: unknown) => {
        text = value == null ? '' : String(value);
        sheet.replaceSync(text);
      },
    });
    const remove = el.remove.bind(el);
    el.remove = () => {
      doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet);
      remove();
    };
    return el;
  };
  const patched = (tag: string, options?: ElementCreationOptions): HTMLElement =>
    tag.toLowerCase() === 'style' ? standIn() : original(tag, options);
  Object.defineProperty(doc, 'createElement', { configurable: true, value: patched });
  try {
    term.open(parent);
  } finally {
    // Back to Document.prototype.createElement.
    delete (doc as unknown as { createElement?: unknown }).createElement;
  }
  return () => {
    doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => !sheets.includes(s));
  };
}
