/**
 * A small element tree over fast-xml-parser's preserve-order output, so the
 * libvirt reader and writer deal in elements with attributes and children
 * in document order, not in the parser's object shapes.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { machineError, type MachineError } from './machine-error.js';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

const ATTR = '@_';
const ATTRS_KEY = ':@';

type Ordered = Record<string, unknown>;

function toElement(node: Ordered): XmlElement | undefined {
  const name = Object.keys(node).find((k) => k !== ATTRS_KEY);
  if (name === undefined || name === '#text' || name.startsWith('?') || name === '#comment')
    return undefined;
  const rawAttrs = (node[ATTRS_KEY] ?? {}) as Record<string, unknown>;
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawAttrs))
    attrs[k.startsWith(ATTR) ? k.slice(ATTR.length) : k] = String(v);
  const kids = (node[name] ?? []) as Ordered[];
  return {
    name,
    attrs,
    children: kids.map(toElement).filter((e): e is XmlElement => e !== undefined),
  };
}

/**
 * Parse a document or a fragment (several top-level elements) into one
 * synthetic root whose children are the top-level elements. The XML
 * declaration and DOCTYPE are dropped first so a fragment can be wrapped.
 */
export function parseXmlFragment(
  text: string,
): { ok: true; root: XmlElement } | { ok: false; error: MachineError } {
  const body = text.replace(/^\s*<\?xml[\s\S]*?\?>/, '').replace(/<!DOCTYPE[^>]*>/g, '');
  const wrapped = `<vmchan-fragment>${body}</vmchan-fragment>`;
  let valid: ReturnType<typeof XMLValidator.validate>;
  try {
    valid = XMLValidator.validate(wrapped, { allowBooleanAttributes: false });
  } catch (error) {
    return { ok: false, error: parserFailure(error) };
  }
  if (valid !== true) {
    return {
      ok: false,
      error: machineError(
        'XmlSyntax',
        `${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`,
      ),
    };
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: ATTR,
    preserveOrder: true,
    parseAttributeValue: false,
    parseTagValue: false,
    // Attribute values are data (paths may end in a space); whitespace-only text nodes are skipped below.
    trimValues: false,
  });
  let nodes: Ordered[];
  try {
    nodes = parser.parse(wrapped) as Ordered[];
  } catch (error) {
    return { ok: false, error: parserFailure(error) };
  }
  const root = nodes.map(toElement).find((e) => e?.name === 'vmchan-fragment');
  if (root === undefined)
    return { ok: false, error: machineError('XmlSyntax', 'no elements found') };
  return { ok: true, root };
}

/**
 * The parser gave up (it throws past its nesting bound, say): one line that
 * names the problem, never an internal error (issue 13: 10,000 nested tags).
 */
function parserFailure(error: unknown): MachineError {
  const text = error instanceof Error ? error.message : String(error);
  return machineError(
    'XmlSyntax',
    /nested/i.test(text)
      ? 'the XML nests elements too deeply (libvirt domain XML is a few levels deep)'
      : `the XML cannot be read: ${text.split('\n', 1)[0]}`,
  );
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/** Build an element; attributes with an undefined value are left out. */
export function element(
  name: string,
  attrs: Record<string, string | undefined> = {},
  children: XmlElement[] = [],
): XmlElement {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) clean[k] = v;
  return { name, attrs: clean, children };
}

function toOrdered(el: XmlElement): Ordered {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(el.attrs)) attrs[ATTR + k] = v;
  const node: Ordered = { [el.name]: el.children.map(toOrdered) };
  if (Object.keys(attrs).length > 0) node[ATTRS_KEY] = attrs;
  return node;
}

/** Serialise with two-space indentation; empty elements self-close. */
export function serializeXml(el: XmlElement): string {
  const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: ATTR,
    preserveOrder: true,
    format: true,
    indentBy: '  ',
    suppressEmptyNode: true,
  });
  return (builder.build([toOrdered(el)]) as string).trim() + '\n';
}
