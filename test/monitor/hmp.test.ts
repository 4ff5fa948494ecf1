/**
 * Q4: the human monitor on a real socket: banner and prompt, QEMU's echo,
 * info chardev and info qtree in QEMU's layout, hot-plug and its refusals
 * printed as "Error: ...", the parser's own complaints, help.
 */
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HmpClient,
  SocketClient,
  recordedMachineArgs,
  removeTempDirs,
  startRig,
  stripEscapes,
  tempDir,
  waitFor,
  type Rig,
} from './helpers.js';

let rig: Rig;
let hmp: HmpClient;
let banner: string;

beforeEach(async () => {
  const dir = tempDir('hmp');
  rig = await startRig(recordedMachineArgs(dir), dir);
  ({ hmp, banner } = await HmpClient.connect(path.join(dir, 'hmp')));
});

afterEach(async () => {
  await hmp.close();
  await rig.close();
  removeTempDirs();
});

describe('Q4 banner, prompt and line editing as QEMU 7.2', () => {
  it('greets with the banner and the prompt', () => {
    expect(banner).toBe("QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
  });

  it('echoes typed bytes the way readline_update redraws the line', async () => {
    const c = hmp.client;
    const start = c.received.length;
    c.write('ab');
    await c.until((b) => b.length >= start + 10, 'echo');
    // "a" drawn, then the cursor goes back one and "ab" is drawn over it.
    expect(c.received.subarray(start).toString()).toBe('a\x1b[K\x1b[Dab\x1b[K');
    c.write('\x7f\x7f\n');
    await c.until((b) => b.toString().endsWith('(qemu) '), 'prompt');
  });

  it('runs an empty line for the \\n of \\r\\n, as QEMU does', async () => {
    const c = hmp.client;
    const start = c.received.length;
    c.write('info status\r\n');
    await c.until((b) => b.subarray(start).toString().split('(qemu) ').length === 3, 'two prompts');
    expect(stripEscapes(c.received.subarray(start).toString())).toMatch(
      /VM status: running\r\n\(qemu\) \r\n\(qemu\) $/,
    );
  });
});

describe('Q4 info chardev and info qtree', () => {
  it('Q4 info chardev prints `id: filename=...` per chardev', async () => {
    const out = await hmp.command('info chardev');
    const lines = out.split('\r\n').filter((l) => l !== '');
    expect(lines).toContain(`c1: filename=disconnected:unix:${path.join(rig.dir, 'c1')},server=on`);
    expect(lines).toContain(`hmp: filename=unix:${path.join(rig.dir, 'hmp')},server=on`);
    for (const l of lines) expect(l).toMatch(/^[A-Za-z][\w.-]*: filename=/);
  });

  it("Q4 info qtree shows the virtio-serial bus and its ports in QEMU's layout", async () => {
    const host = await SocketClient.connect(path.join(rig.dir, 'c1'));
    const fd = await rig.machine.lab.guest.files.open('/dev/virtio-ports/org.test.port.1');
    await waitFor(() => rig.machine.lab.port('port1')?.port.guestConnected === true, 'guest open');
    const out = await hmp.command('info qtree');
    expect(out).toContain(
      [
        '  dev: virtio-serial-pci, id "vser0"',
        '    ioeventfd  = true',
        '    vectors    = 2 (0x2)',
        '    class      = 1920 (0x780)',
        '    bus: virtio-bus',
        '      type virtio-pci-bus',
        '      dev: virtio-serial-device, id ""',
        '        max_ports  = 8 (0x8)',
        '        emergency-write = true',
      ].join('\r\n'),
    );
    // The newest port first (QEMU adds bus children at the head).
    expect(out).toContain(
      [
        '        bus: vser0.0',
        '          type virtio-serial-bus',
        '          dev: virtserialport, id "port1"',
        '            chardev    = "c1"',
        '            nr         = 1 (0x1)',
        '            name       = "org.test.port.1"',
        '            port 1, guest on, host on, throttle off',
        '          dev: virtconsole, id "con0"',
        '            chardev    = "c0"',
        '            nr         = 0 (0x0)',
        '            name       = "org.test.console.0"',
        '            port 0, guest on, host on, throttle off',
      ].join('\r\n'),
    );
    expect(out.startsWith('bus: pcie.0\r\n  type PCIE\r\n')).toBe(true);
    void fd;
    await host.close();
  });
});

describe('Q4 D3 D8 hot-plug through HMP', () => {
  it('Q4 chardev-add, device_add, device_del, chardev-remove; refusals as "Error: ..."', async () => {
    const p = path.join(rig.dir, 'hp');
    expect(await hmp.command(`chardev-add socket,id=c9,path=${p},server=on,wait=off`)).toBe('');
    expect(await hmp.command('device_add virtserialport,chardev=c9,name=org.test.hp,id=hp0')).toBe(
      '',
    );
    await waitFor(() => {
      const l = rig.machine.lab.guest.namespace.list('/dev/virtio-ports');
      return Array.isArray(l) && l.includes('org.test.hp');
    }, 'the guest link');
    expect(await hmp.command('device_add virtserialport,chardev=c9,name=other')).toBe(
      "Error: Property 'virtserialport.chardev' can't take value 'c9': Device 'c9' is in use\r\n",
    );
    expect(await hmp.command('device_add virtserialport,name=org.test.hp')).toBe(
      'Error: virtio-serial-bus: A port already exists by name org.test.hp\r\n',
    );
    expect(await hmp.command('device_add virtserialport,nr=1')).toBe(
      'Error: virtio-serial-bus: A port already exists at id 1\r\n',
    );
    expect(await hmp.command('chardev-remove c9')).toBe("Error: Chardev 'c9' is busy\r\n");
    expect(await hmp.command('device_del hp0')).toBe('');
    expect(await hmp.command('device_del hp0')).toBe("Error: Device 'hp0' not found\r\n");
    expect(await hmp.command('chardev-remove c9')).toBe('');
    expect(await hmp.command('chardev-add socket,id=bad,foo=1')).toBe(
      "Invalid parameter 'foo'\r\nError: Parsing chardev args failed\r\n",
    );
    expect(await hmp.command('chardev-add ringbuf,id=r1,size=3')).toBe(
      'Error: size of ringbuf chardev must be power of two\r\n',
    );
    expect(await hmp.command('device_add')).toBe("Error: Parameter 'driver' is missing\r\n");
  });

  it('Q6 chardev-change as QEMU 7.2 HMP answers it (checked with -monitor stdio)', async () => {
    // A virtserialport's chardev: virtio-console has no be_change handler.
    expect(await hmp.command('chardev-change c1 null')).toBe(
      'Error: Chardev user does not support chardev hotswap\r\n',
    );
    expect(await hmp.command('chardev-change nope null')).toBe(
      "Error: Chardev 'nope' does not exist\r\n",
    );
    expect(await hmp.command('chardev-change c1 null,id=x')).toBe(
      "Error: Unexpected 'id' parameter\r\n",
    );
    expect(await hmp.command('chardev-change c1 socket,foo=1')).toBe(
      "Invalid parameter 'foo'\r\nError: Parsing chardev args failed\r\n",
    );
    // A chardev nothing holds is replaced.
    expect(await hmp.command('chardev-add null,id=free')).toBe('');
    expect(await hmp.command('chardev-change free ringbuf,size=1024')).toBe('');
    expect(await hmp.command('ringbuf_write free x')).toBe('');
  });

  it('ringbuf_write then ringbuf_read', async () => {
    await hmp.command('chardev-add ringbuf,id=rb,size=1024');
    expect(await hmp.command('ringbuf_write rb "hello\\r\\nback\\\\slash"')).toBe('');
    expect(await hmp.command('ringbuf_read rb 100')).toBe('hello\\u000D\r\nback\\\\slash\r\n');
    expect(await hmp.command('ringbuf_read c1 10')).toBe('Error: c1 is not a ringbuf device\r\n');
    // Bytes go through as bytes: UTF-8 typed in comes back as the same bytes.
    expect(await hmp.command('ringbuf_write rb h\u00e9llo')).toBe('');
    expect(await hmp.command('ringbuf_read rb 100')).toBe(
      Buffer.from('h\u00e9llo\r\n').toString('latin1'),
    );
  });
});

describe("Q4 the command parser's own complaints, and help", () => {
  it("prints QEMU's messages for unknown commands and bad arguments", async () => {
    expect(await hmp.command('frobnicate now')).toBe("unknown command: 'frobnicate'\r\n");
    expect(await hmp.command('info nothing')).toBe("unknown command: 'info nothing'\r\n");
    expect(await hmp.command('device_del')).toBe(
      'device_del: string expected\r\nTry "help device_del" for more information\r\n',
    );
    expect(await hmp.command('info chardev extra')).toBe(
      'chardev: extraneous characters at the end of line\r\nTry "help info chardev" for more information\r\n',
    );
    expect(await hmp.command('device_add virtserialport,id=9x')).toBe(
      "Parameter 'id' expects an identifier\r\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.\r\nTry \"help device_add\" for more information\r\n",
    );
    expect(await hmp.command('')).toBe('');
  });

  it('Q4 help lists the commands sorted, help info the info commands', async () => {
    const all = await hmp.command('help');
    expect(all.split('\r\n').filter((l) => l !== '')).toEqual([
      'chardev-add args -- add chardev',
      'chardev-change id args -- change chardev',
      'chardev-remove id -- remove chardev',
      'device_add driver[,prop=value][,...] -- add device, like -device on the command line',
      'device_del device -- remove device',
      'help|? [cmd] -- show the help',
      'info [subcommand] -- show various information about the system state',
      'quit|q  -- quit the emulator',
      'ringbuf_read device size -- Read from a ring buffer character device',
      'ringbuf_write device data -- Write to a ring buffer character device',
    ]);
    expect(await hmp.command('help info')).toContain(
      'info chardev  -- show the character devices\r\n',
    );
    expect(await hmp.command('info')).toContain('info qtree  -- show device tree\r\n');
    expect(await hmp.command('? device_del')).toBe('device_del device -- remove device\r\n');
    expect(await hmp.command('help info qtree')).toBe('info qtree  -- show device tree\r\n');
    expect(await hmp.command('help nope')).toBe("unknown command: 'nope'\r\n");
  });

  it('quit hands over to the machine', async () => {
    hmp.client.write('quit\n');
    await waitFor(() => rig.quits === 1, 'quit');
  });
});
