/**
 * One frontend slot of a mux=on chardev, as the Lab's chardev table sees it.
 *
 * The Lab keeps one endpoint per chardev id and a port takes the endpoint it
 * finds under its `chardev=` id, so a chardev shared by up to four ports
 * (H1 mux=on) needs a different endpoint in the table for each port that
 * plugs in. The Machine installs a MuxSlot for a free MuxFrontend; once a
 * port holds it, the Machine swaps in a slot for the next free frontend
 * before the next port names the chardev (Lab.chardevRemove refuses an
 * attached endpoint, hence `releasing`, which hides the attachment for the
 * one call that takes the slot out of the table; the port keeps its own
 * reference to the slot, so nothing changes for it).
 *
 * Everything else is forwarded to the frontend unchanged.
 */
import type { MuxFrontend } from '../chardev/index.js';
import type { ChardevEndpoint, ChardevHandlers } from '../serial/endpoint.js';

export class MuxSlot implements ChardevEndpoint {
  /** True only while the Machine takes this slot out of the Lab's table. */
  releasing = false;

  constructor(readonly frontend: MuxFrontend) {}

  get id(): string {
    return this.frontend.id;
  }

  get connected(): boolean {
    return this.frontend.connected;
  }

  get attached(): boolean {
    return !this.releasing && this.frontend.attached;
  }

  get frontendOpen(): boolean {
    return this.frontend.frontendOpen;
  }

  attach(handlers: ChardevHandlers): boolean {
    return this.frontend.attach(handlers);
  }

  detach(): void {
    this.frontend.detach();
  }

  write(bytes: Uint8Array, handover = false, release?: (bytes: Uint8Array) => void): number {
    return this.frontend.write(bytes, handover, release);
  }

  addWriteWatch(callback: () => void): () => void {
    return this.frontend.addWriteWatch(callback);
  }

  acceptInput(): void {
    this.frontend.acceptInput();
  }

  setFrontendOpen(open: boolean): void {
    this.frontend.setFrontendOpen(open);
  }

  describe(): string {
    return this.frontend.describe();
  }
}
