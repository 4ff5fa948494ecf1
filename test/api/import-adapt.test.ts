/**
 * Import of configurations with parts vmchan cannot model (issue 17,
 * Debugging a channel): a libvirt XML with a spicevmc channel and a unix
 * channel without <source> imports the rest, with one note per skipped or
 * changed part naming it; a QEMU command line's notes name the option they
 * ignored.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { TopologySnapshot } from '../../core/api/contract/contract.js';
import { rig, type Rig } from './helpers.js';

type Imported = { topology: TopologySnapshot; notes: { kind: string; message: string }[] };

const XML = `<domain type='kvm'><name>g</name><devices>
  <controller type='virtio-serial' index='0'/>
  <channel type='unix'>
    <source mode='bind' path='PATH'/>
    <target type='virtio' name='org.qemu.guest_agent.0'/>
  </channel>
  <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
  <channel type='unix'><target type='virtio' name='org.example.auto'/></channel>
</devices></domain>`;

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

describe('importing what vmchan cannot model', () => {
  it('imports the rest of a libvirt XML, one note per skipped or changed part', async () => {
    r = await rig();
    const xml = XML.replace('PATH', `/tmp/vmchan-imp-ga-${process.pid}.sock`);
    const imported = await r.must<Imported>({ cmd: 'importConfig', format: 'libvirt', text: xml });
    const names = imported.topology.ports.map((p) => p.name);
    expect(names).toContain('org.qemu.guest_agent.0');
    expect(names).toContain('org.example.auto');
    expect(names).not.toContain('com.redhat.spice.0');
    const skipped = imported.notes.filter((n) => n.kind === 'skipped');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.message).toMatch(/spicevmc/);
    expect(skipped[0]!.message).toMatch(/com\.redhat\.spice\.0/);
    const changed = imported.notes.filter((n) => n.kind === 'changed');
    expect(changed).toHaveLength(1);
    expect(changed[0]!.message).toMatch(/without <source>/);
    // the automatic channel listens where the note says, a real socket
    const auto = imported.topology.chardevs.find((c) =>
      imported.topology.ports.some((p) => p.name === 'org.example.auto' && p.chardev === c.id),
    );
    expect(auto?.path).toBeDefined();
    expect(changed[0]!.message).toContain(auto!.path!);
    expect(fs.statSync(auto!.path!).isSocket()).toBe(true);
  });

  it('names the QEMU option a note ignored', async () => {
    r = await rig();
    const imported = await r.must<Imported>({
      cmd: 'importConfig',
      format: 'qemu',
      text: '-m 512 -device virtio-serial -device virtserialport,name=a',
    });
    expect(imported.notes.length).toBeGreaterThan(0);
    expect(imported.notes.some((n) => /-m\b/.test(n.message))).toBe(true);
  });
});
