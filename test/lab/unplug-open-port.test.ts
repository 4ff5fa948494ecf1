/**
 * Issue 14 item 1: hot-unplug of a port the guest has open must not stop the
 * device (D8, D10, L10, M11).
 *
 * What QEMU 7.2 and Linux 6.1 do:
 * - Linux (drivers/char/virtio_console.c, unplug_port): on PORT_REMOVE the
 *   driver sets port->portdev = NULL, so a later close of the file
 *   (port_fops_release -> send_control_msg) sends nothing for the port.
 * - A close that races the unplug (the guest closed before it saw
 *   PORT_REMOVE) reaches QEMU as PORT_OPEN 0 for an id it no longer has:
 *   hw/char/virtio-serial-bus.c handle_control_message prints
 *   "virtio-serial-bus: Unexpected port id %u for device %s" with
 *   error_report() and returns; the device keeps running.
 */
import { describe, expect, it } from 'vitest';
import { ControlEvent } from '../../core/serial/control.js';
import { O_NONBLOCK, O_RDWR } from '../../core/serial/guest/files.js';
import { bootLab, caseStudy, must, readExactly, record, text } from '../serial/helpers.js';

describe('D10 L10 hot-unplug of an open port keeps the device running', () => {
  it('D10 the guest closing the port after PORT_REMOVE sends nothing, the device stays up', async () => {
    const lab = await bootLab(caseStudy());
    const control = record(lab.events, 'control');
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/test2', O_RDWR | O_NONBLOCK));
    lab.host('test2').connect();
    await lab.settle();
    expect(must(await lab.guest.files.write(fd, new TextEncoder().encode('hi')))).toBe(2);

    const device = lab.device('vser0')!;
    device.unplugPort(device.ports.find((p) => p.name === 'test2')!);
    await lab.settle(); // the guest handles PORT_REMOVE (unplug_port)
    control.length = 0;
    expect(await lab.guest.files.close(fd)).toBe(0);
    await lab.settle();

    // Linux: port->portdev is NULL after unplug_port, the release sends nothing.
    expect(control.filter((c) => c.direction === 'to-device')).toEqual([]);
    expect(device.fault).toBe(null);
    // Every other port still works.
    const other = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    lab.host('test1').connect();
    lab.host('test1').write('still alive');
    expect(text(await readExactly(lab.guest.files, other, 11))).toBe('still alive');
  });

  it('D10 M11 a close racing the unplug reaches the device as an unknown port id: reported, ignored', async () => {
    // The app's "Send as guest" then "Unplug": the guest terminal is closed and
    // the port unplugged in the same tick, before the guest sees PORT_REMOVE.
    const lab = await bootLab(caseStudy());
    const ignored = record(lab.events, 'control-ignored');
    const resets = record(lab.events, 'needs-reset');
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/test2', O_RDWR | O_NONBLOCK));
    await lab.settle();
    const device = lab.device('vser0')!;
    const port = device.ports.find((p) => p.name === 'test2')!;
    const closing = lab.guest.files.close(fd);
    device.unplugPort(port);
    await closing;
    await lab.settle();

    expect(resets).toEqual([]);
    expect(device.fault).toBe(null);
    expect(ignored.map((e) => e.qemuReport)).toEqual([
      `virtio-serial-bus: Unexpected port id ${port.nr} for device vser0.0`,
    ]);
    expect(lab.guest.namespace.exists('/dev/virtio-ports/test2')).toBe(false);
    // The device still serves the guest: a console write and a serial port read.
    const other = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    lab.host('test1').connect();
    lab.host('test1').write('ok');
    expect(text(await readExactly(lab.guest.files, other, 2))).toBe('ok');
    const controls = record(lab.events, 'control');
    expect(await lab.guest.files.close(other)).toBe(0);
    await lab.settle();
    expect(controls.map((c) => [c.direction, c.message.event, c.message.value])).toEqual([
      ['to-device', ControlEvent.PORT_OPEN, 0],
    ]);
  });
});
