/**
 * Lenient reading of hand-written libvirt XML. Snippets in mail and wiki
 * pages often leave device elements open, as seed 001 does:
 *
 *   <channel type='pipe'>
 *     <source path="/tmp/guesta-virtioserial1"/>
 *     <target type='virtio' name='org.linux-kvm.port.1'/>
 *   <channel type='pipe'>
 *
 * libvirt device elements never nest, so a new <channel> (or console,
 * serial, parallel, controller) while one is open can only mean the author
 * forgot the closing tag. This pass inserts the missing closing tags,
 * closes whatever is still open at the end, drops closing tags that match
 * nothing, and says what it did. Anything else malformed is left for the
 * XML validator to report.
 */
import { note, type MachineNote } from './machine-error.js';

const DEVICE_ELEMENTS = new Set(['channel', 'console', 'serial', 'parallel', 'controller']);

const TOKEN =
  /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

export function repairXml(text: string): { text: string; notes: MachineNote[] } {
  const notes: MachineNote[] = [];
  const stack: string[] = [];
  let out = '';
  let last = 0;
  const closeDownTo = (depth: number, why: string, at: number): string => {
    let inserted = '';
    while (stack.length > depth) {
      const name = stack.pop() as string;
      inserted += `</${name}>`;
      notes.push(
        note('Repaired', `closed <${name}> left open ${why} (line ${lineAt(text, at)})`, {
          element: `<${name}>`,
        }),
      );
    }
    return inserted;
  };

  for (const m of text.matchAll(TOKEN)) {
    const at = m.index;
    const [whole, slash, name, , selfClose] = m;
    out += text.slice(last, at);
    last = at + whole.length;
    if (name === undefined) {
      out += whole;
      continue;
    }
    if (slash === '/') {
      const depth = stack.lastIndexOf(name);
      if (depth < 0) {
        notes.push(
          note('Repaired', `dropped </${name}>, which closes nothing (line ${lineAt(text, at)})`, {
            element: `</${name}>`,
          }),
        );
        continue;
      }
      out += closeDownTo(depth + 1, `before </${name}>`, at) + whole;
      stack.pop();
      continue;
    }
    if (DEVICE_ELEMENTS.has(name)) {
      const open = stack.findIndex((e) => DEVICE_ELEMENTS.has(e));
      if (open >= 0) out += closeDownTo(open, `before <${name}>`, at);
    }
    out += whole;
    if (selfClose !== '/') stack.push(name);
  }
  out += text.slice(last);
  out += closeDownTo(0, 'at the end of the input', text.length);
  return { text: out, notes };
}
