/**
 * vmchan's QMP extension x-vmchan-query-drops (issue 13 item 14): every
 * dropped byte of the lab by port, direction, side and reason, from the
 * same ledger the app and `vmchan run`'s summary line show.
 */
import { describe, expect, it } from 'vitest';
import { eachRecordedRig, type QmpClient, type Rig } from './helpers.js';

describe('x-vmchan-query-drops', () => {
  let rig: Rig;
  let q: QmpClient;
  eachRecordedRig('drops', (r, c) => {
    rig = r;
    q = c;
  });

  it('lists what the engine counted, by port, direction, side and reason', async () => {
    expect(await q.must('x-vmchan-query-drops')).toEqual([]);
    // Drops as the device and the guest driver report them (their own tests prove the counts).
    const events = rig.machine.lab.events;
    events.emit('drop', {
      device: 'vser0',
      nr: 1,
      side: 'device',
      bytes: 300,
      reason: 'unplugged',
      direction: 'to-host',
    });
    events.emit('drop', {
      device: 'vser0',
      nr: 1,
      side: 'guest',
      bytes: 5,
      reason: 'closed-unread',
    });
    events.emit('drop', {
      device: 'vser0',
      nr: 1,
      side: 'device',
      bytes: 7,
      reason: 'unplugged',
      direction: 'to-host',
    });
    events.emit('drop', {
      device: 'vser0',
      nr: null,
      side: 'device',
      bytes: 8,
      reason: 'control-undelivered',
    });
    expect(await q.must('x-vmchan-query-drops')).toEqual([
      { device: 'vser0', side: 'device', reason: 'control-undelivered', bytes: 8 },
      {
        device: 'vser0',
        port: 1,
        direction: 'to-guest',
        side: 'guest',
        reason: 'closed-unread',
        bytes: 5,
      },
      {
        device: 'vser0',
        port: 1,
        direction: 'to-host',
        side: 'device',
        reason: 'unplugged',
        bytes: 307,
      },
    ]);
    expect(rig.machine.lab.drops.summary()).toBe(
      'dropped 320 bytes: vser0 control-undelivered 8, vser0 port 1 to-guest closed-unread 5, ' +
        'vser0 port 1 to-host unplugged 307',
    );
  });

  it('takes no arguments, as QAPI checks', async () => {
    const r = await q.execute('x-vmchan-query-drops', { port: 1 });
    expect(r).toMatchObject({ error: { class: 'GenericError' } });
  });
});
