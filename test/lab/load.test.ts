/**
 * L12 D5 D6 under load (issue 13): 31 ports stream 8 MiB each way at once
 * through real unix sockets (host socket <-> lab <-> guest-dir socket);
 * every stream's sha1 matches, nothing waits for guest memory forever, the
 * peak RSS is printed, and a port whose guest reader never reads does not
 * stop the others. `npm run bench -- load` does the same with 64 MiB.
 */
import { describe, expect, it } from 'vitest';
import { runLoad } from '../../bench/load.js';

const MiB = 1024 * 1024;
const PORTS = Number(process.env.VMCHAN_LOAD_PORTS ?? 31);
const BYTES = Number(process.env.VMCHAN_LOAD_MIB ?? 8) * MiB;

describe('load: many ports streaming both ways at once', () => {
  it(`${PORTS} ports x ${BYTES / MiB} MiB each way, one stuck reader: every sha1 matches`, async () => {
    const r = await runLoad({ ports: PORTS, bytes: BYTES, stuckReader: true });
    expect(r.ports).toHaveLength(PORTS);
    for (const p of r.ports) {
      expect(p.toGuest.received, `${p.name} host->guest`).toBe(p.toGuest.sent);
      expect(p.toHost.received, `${p.name} guest->host`).toBe(p.toHost.sent);
    }
    // the stuck port took what its buffers hold and no more
    expect(r.stuckAccepted).toBeGreaterThan(0);
    expect(r.stuckAccepted).toBeLessThan(64 * MiB);
    process.stdout.write(
      `load: ${PORTS} ports x ${BYTES / MiB} MiB each way in ${r.seconds.toFixed(1)} s, ` +
        `peak RSS ${(r.peakRssBytes / MiB).toFixed(0)} MiB\n`,
    );
  }, 600_000);
});
