/**
 * Bad-input corpus, libvirt XML (issue 13): importConfig answers every case
 * with one clear line that says what is wrong (not one line for every
 * malformed XML, not an internal error for deep nesting), and keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiService } from '../../core/api/server/service.js';
import { XML_CASES } from './libvirt-xml.cases.js';
import { expectClearLine } from './clear.js';

let service: ApiService;
beforeAll(async () => {
  service = await ApiService.create({ face: 'web', lab: 'empty' });
});
afterAll(async () => {
  await service.close();
});

describe('bad input: libvirt XML', () => {
  for (const c of XML_CASES) {
    it(c.name, async () => {
      const r = await service.execute({ cmd: 'importConfig', format: 'libvirt', text: c.xml });
      expect(r.ok, 'accepted').toBe(false);
      if (r.ok) return;
      expect(r.error.kind).toMatch(/^(ParseError|Refused)$/);
      expectClearLine(r.error.message, c.message);
      expect((await service.execute({ cmd: 'hello' })).ok).toBe(true);
    });
  }

  it('malformed XMLs get different answers, each naming its problem', () => {
    const lines = new Set(XML_CASES.map((c) => String(c.message)));
    expect(lines.size).toBeGreaterThan(XML_CASES.length / 2);
  });

  it('a 1 MB XML is answered with bounded memory; a bigger one is refused by its size', async () => {
    const big = `<domain><devices>${'<disk type="file"/>'.repeat(50_000)}</devices></domain>`;
    const before = process.memoryUsage().rss;
    const r = await service.execute({ cmd: 'importConfig', format: 'libvirt', text: big });
    const grew = process.memoryUsage().rss - before;
    expect(r.ok ? 'accepted' : r.error.message).toBe(
      'no virtio-serial controller in this XML (<controller type="virtio-serial">)',
    );
    expect(grew).toBeLessThan(512 * 1024 * 1024);
    const huge = await service.execute({
      cmd: 'importConfig',
      format: 'libvirt',
      text: big.repeat(25),
    });
    expect(huge.ok ? 'accepted' : huge.error.message).toBe(
      'text: Too big: expected string to have <=1048576 characters',
    );
  });
});
