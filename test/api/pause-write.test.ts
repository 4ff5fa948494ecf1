/**
 * Issue 13 item 6: Pause (or Step) then "write to guest" froze the app: the
 * guest's write is a task on the paused engine, writeGuest never answered
 * and every later command, Run included, waited behind it. Now no command
 * waits on the engine's progress while it is paused: writeGuest answers at
 * once with what it queued, and the bytes go when the engine runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandInput, Result } from '../../core/api/contract/contract.js';
import { plugOnNewChardev, rig, socketClient, until, type Rig } from './helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

/** The command's answer, or a failure naming the command that did not answer. */
async function answer(lab: Rig, command: CommandInput): Promise<Result<unknown>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${command.cmd} did not answer`)), 5000);
  });
  try {
    return await Promise.race([lab.run(command), silent]);
  } finally {
    clearTimeout(timer);
  }
}

async function connectedPort(lab: Rig) {
  const port = await plugOnNewChardev(lab, { name: 'term', chardev: 't' });
  const ref = { device: 'vser0', nr: port.nr };
  await until(async () => (await lab.topology()).ports[0]!.guestName ?? undefined);
  const client = await socketClient((await lab.topology()).chardevs[0]!.path!);
  await until(async () => (await lab.topology()).ports[0]!.hostConnected || undefined);
  return { ref, client };
}

describe('item 6: pause, write to guest, run: every command answers', () => {
  it('answers writeGuest at once while paused, answers every later command, and delivers on Run', async () => {
    r = await rig();
    const { ref, client } = await connectedPort(r);
    expect(await answer(r, { cmd: 'pause' })).toMatchObject({ ok: true });
    expect(await answer(r, { cmd: 'writeGuest', port: ref, data: 'first ' })).toEqual({
      ok: true,
      value: { written: 0, queued: 6 },
    });
    expect(await answer(r, { cmd: 'writeGuest', port: ref, data: 'second\n' })).toEqual({
      ok: true,
      value: { written: 0, queued: 7 },
    });
    for (const command of [
      { cmd: 'hello' },
      { cmd: 'getTopology' },
      { cmd: 'getVring', device: 'vser0', queue: 0 },
      { cmd: 'exportConfig', format: 'qemu' },
    ] as CommandInput[]) {
      const a = await answer(r, command);
      expect(a.ok ? 'ok' : a.error.message, command.cmd).toBe('ok');
    }
    // A refusal is an answer too (the host side has its client already).
    expect(await answer(r, { cmd: 'writeHost', port: ref, data: 'h' })).toMatchObject({
      ok: false,
    });
    expect(client.received().toString()).toBe(''); // still paused: nothing left the guest
    expect(await answer(r, { cmd: 'run' })).toMatchObject({ ok: true });
    await until(() => client.received().toString() === 'first second\n' || undefined);
    // Running again: writeGuest answers with what the guest wrote.
    expect(await answer(r, { cmd: 'writeGuest', port: ref, data: 'third\n' })).toEqual({
      ok: true,
      value: { written: 6 },
    });
    await until(() => client.received().toString() === 'first second\nthird\n' || undefined);
    client.close();
  });

  it('answers writeGuest and Step while paused; each step moves the queued write on', async () => {
    r = await rig();
    const { ref, client } = await connectedPort(r);
    await answer(r, { cmd: 'pause' });
    expect(await answer(r, { cmd: 'writeGuest', port: ref, data: 'stepped\n' })).toMatchObject({
      ok: true,
      value: { queued: 8 },
    });
    for (let i = 0; i < 200 && client.received().length === 0; i++) {
      const s = await answer(r, { cmd: 'step' });
      expect(s.ok).toBe(true);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await until(() => client.received().toString() === 'stepped\n' || undefined);
    expect(await answer(r, { cmd: 'run' })).toMatchObject({ ok: true });
    client.close();
  });

  it('shows a queued write that failed when the engine ran, as a line in the events', async () => {
    r = await rig();
    const { ref, client } = await connectedPort(r);
    // The guest terminal is open; then the host goes away: a non-blocking write gets EAGAIN.
    expect(await answer(r, { cmd: 'writeGuest', port: ref, data: 'x' })).toEqual({
      ok: true,
      value: { written: 1 },
    });
    await until(() => client.received().length === 1 || undefined);
    client.close();
    await until(async () => !(await r!.topology()).ports[0]!.hostConnected || undefined);
    await answer(r, { cmd: 'pause' });
    expect(await answer(r, { cmd: 'writeGuest', port: ref, data: 'lost?' })).toMatchObject({
      ok: true,
      value: { queued: 5 },
    });
    await answer(r, { cmd: 'run' });
    const e = await r.waitEvent((x) => x.text.includes('queued while paused'));
    expect(e.text).toMatch(
      /^guest write to .*term.* \(queued while paused\): .*EAGAIN.*the host side is not connected/,
    );
  });
});
