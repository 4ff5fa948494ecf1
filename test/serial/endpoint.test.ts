/**
 * The chardev endpoint contract, on the in-memory pair: pull with canRead and
 * acceptInput, push with short writes and write watches, connection events.
 */
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../core/engine/scheduler.js';
import type { ChardevEvent, ChardevHandlers } from '../../core/serial/endpoint.js';
import { createMemoryEndpoint } from '../../core/serial/memory-endpoint.js';
import { pattern, text } from './helpers.js';

function frontend(room: { n: number }) {
  const got: Uint8Array[] = [];
  const events: ChardevEvent[] = [];
  const handlers: ChardevHandlers = {
    canRead: () => room.n,
    read: (b) => {
      got.push(b);
      room.n -= b.length;
    },
    event: (e) => events.push(e),
  };
  return { got, events, handlers };
}

describe('in-memory endpoint', () => {
  it('delivers host bytes only as far as canRead allows, in chunks of at most 4096, and resumes on acceptInput', async () => {
    const s = new Scheduler();
    const { endpoint, peer } = createMemoryEndpoint({ id: 'c', post: s.post, connected: true });
    const room = { n: 5000 };
    const f = frontend(room);
    expect(endpoint.attach(f.handlers)).toBe(true);
    peer.write(pattern(10_000));
    await s.settle();
    expect(f.got.map((b) => b.length)).toEqual([4096, 904]);
    expect(endpoint.pendingToGuest).toBe(5000);
    room.n = 8000;
    await s.settle();
    expect(f.got).toHaveLength(2); // no polling: the frontend must say so
    endpoint.acceptInput();
    await s.settle();
    expect(Buffer.concat(f.got)).toEqual(Buffer.from(pattern(10_000)));
    expect(f.events).toEqual(['opened']);
  });

  it('one frontend at a time; attaching to a connected backend reports opened', async () => {
    const s = new Scheduler();
    const { endpoint } = createMemoryEndpoint({ id: 'c', post: s.post, connected: true });
    const f = frontend({ n: 0 });
    expect(endpoint.attach(f.handlers)).toBe(true);
    expect(endpoint.attach(frontend({ n: 0 }).handlers)).toBe(false);
    await s.settle();
    expect(f.events).toEqual(['opened']);
    endpoint.detach();
    expect(endpoint.attached).toBe(false);
  });

  it('a full host buffer takes fewer bytes; the write watch fires when the host reads', async () => {
    const s = new Scheduler();
    const { endpoint, peer } = createMemoryEndpoint({
      id: 'c',
      post: s.post,
      connected: true,
      capacity: 10,
    });
    endpoint.attach(frontend({ n: 0 }).handlers);
    expect(endpoint.write(pattern(25))).toBe(10);
    let fired = 0;
    endpoint.addWriteWatch(() => fired++);
    await s.settle();
    expect(fired).toBe(0);
    expect(peer.read(4).length).toBe(4);
    await s.settle();
    expect(fired).toBe(1); // one-shot
    expect(endpoint.write(pattern(25))).toBe(4);
    endpoint.addWriteWatch(() => fired++);
    peer.disconnect(); // G_IO_HUP wakes a writer too
    await s.settle();
    expect(fired).toBe(2);
  });

  it('counts what it drops: host bytes queued at disconnect, port bytes with nobody connected', async () => {
    const s = new Scheduler();
    const { endpoint, peer } = createMemoryEndpoint({ id: 'c', post: s.post, connected: true });
    const f = frontend({ n: 0 });
    endpoint.attach(f.handlers);
    peer.write('queued');
    peer.disconnect();
    expect(endpoint.stats.discardedFromHost).toBe(6);
    expect(endpoint.write(pattern(7))).toBe(7);
    expect(endpoint.stats.discardedToHost).toBe(7);
    expect(peer.write('ignored')).toBe(0);
    await s.settle();
    expect(f.events).toEqual(['opened', 'closed']);
  });

  it('flowing mode hands bytes over as they come; pause makes the buffer fill (backpressure)', () => {
    const { endpoint, peer } = createMemoryEndpoint({ id: 'c', connected: true, capacity: 3 });
    const got: string[] = [];
    peer.onData((b) => got.push(text(b)));
    expect(endpoint.write(new TextEncoder().encode('abc'))).toBe(3);
    peer.pause();
    expect(endpoint.write(new TextEncoder().encode('defgh'))).toBe(3);
    peer.resume();
    expect(got).toEqual(['abc', 'def']);
    expect(endpoint.describe()).toBe('memory:c');
    peer.disconnect();
    expect(endpoint.describe()).toBe('disconnected:memory:c');
  });
});
