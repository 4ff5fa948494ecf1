/**
 * null: discards everything. As QEMU's char-null.c it is never opened
 * (be_opened = false: a virtserialport on it never sees the host connect),
 * so whatever a frontend still writes to it counts as dropped 'no-peer'.
 */
import { BackendEndpoint, type BackendOptions } from './backend-endpoint.js';

export class NullChardev extends BackendEndpoint {
  readonly kind = 'null' as const;

  constructor(options: BackendOptions) {
    super(options);
  }

  describe(): string {
    return 'null';
  }

  protected transmit(bytes: Uint8Array): number {
    return bytes.length; // never reached: nothing is ever carried
  }

  protected async teardown(): Promise<void> {}
}
