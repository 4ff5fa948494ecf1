import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  parseQemuArgs,
  printQemuArgs,
  topologyFromLibvirtXml,
  topologyToLibvirtXml,
  type Topology,
} from '../../core/machine/index.js';
import { libvirtTopologyArb, topologyArb } from './arbitraries.js';

function fromXml(xml: string): Topology {
  const r = topologyFromLibvirtXml(xml);
  if (!r.ok) throw new Error(`${r.error.toString()}\n${xml}`);
  return r.value;
}

describe('H1 libvirt XML round trips', () => {
  test('what libvirt can say completely comes back exactly, with nothing to report', () => {
    fc.assert(
      fc.property(libvirtTopologyArb, (t) => {
        const out = topologyToLibvirtXml(t);
        expect(out.notes).toEqual([]);
        expect(fromXml(out.xml)).toEqual(t);
      }),
      { numRuns: 300 },
    );
  });

  test('QEMU args -> topology -> XML -> topology -> QEMU args is lossless for what both sides express', () => {
    fc.assert(
      fc.property(libvirtTopologyArb, (t) => {
        const args = printQemuArgs(t).args;
        const parsed = parseQemuArgs(args);
        if (!parsed.ok) throw new Error(parsed.error.toString());
        const back = fromXml(topologyToLibvirtXml(parsed.value).xml);
        expect(printQemuArgs(back).args).toEqual(args);
      }),
      { numRuns: 200 },
    );
  });

  test('any valid topology: the XML reads back, and after one trip it is a fixed point', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        const first = topologyToLibvirtXml(t);
        const t2 = fromXml(first.xml);
        const second = topologyToLibvirtXml(t2);
        expect(second.xml).toBe(first.xml);
        expect(fromXml(second.xml)).toEqual(t2);
      }),
      { numRuns: 300 },
    );
  });

  test('what the XML says is a machine QEMU accepts', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        const out = topologyToLibvirtXml(t);
        // The one exception is announced: a shared stdio chardev copied per channel.
        fc.pre(!out.notes.some((n) => n.message.includes('QEMU refuses more than one stdio')));
        const back = parseQemuArgs(printQemuArgs(fromXml(out.xml)).args);
        if (!back.ok) throw new Error(back.error.toString());
      }),
      { numRuns: 200 },
    );
  });

  test('nothing is dropped silently: every port missing from the XML has a sentence', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        const out = topologyToLibvirtXml(t);
        const written = fromXml(out.xml).ports.length;
        const leftOut = out.notes.filter(
          (n) =>
            n.message.includes(' is left out: ') && /^virt(serialport|console) /.test(n.message),
        );
        expect(written + leftOut.length).toBe(t.ports.length);
        // Monitors and ignored options are always reported.
        expect(out.notes.filter((n) => n.message.includes('monitor on')).length).toBe(
          t.monitors.length,
        );
        expect(
          out.notes.filter((n) => n.message.includes('outside the virtio-serial devices')).length,
        ).toBe(t.ignored.length);
      }),
      { numRuns: 300 },
    );
  });
});
