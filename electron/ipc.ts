/**
 * The IPC face of the API, factored so it runs without a window: the
 * handlers take an event shaped like Electron's (sender frame URL, sender)
 * and a payload, and refuse anything that does not come from the app's own
 * frame (`app://vmchan/...`) or does not match the contract. Tests call them
 * with fake events (test/electron/ipc.test.ts).
 */
import { z } from 'zod';
import {
  AckSchema,
  BatchSchema,
  describeIssues,
  fail,
  IPC,
  MenuActionSchema,
  type Batch,
  type MenuAction,
  type Result,
} from '../core/api/contract/contract.js';
import { describeReach, reachOf, type Reach } from '../core/api/contract/reach.js';

/** The app's origin: everything the window shows comes from here. */
export const APP_SCHEME = 'app';
export const APP_HOST = 'vmchan';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_ENTRY = `${APP_ORIGIN}/index.html`;

/** The parts of Electron's IpcMainEvent / IpcMainInvokeEvent the handlers read. */
export interface IpcEventLike {
  readonly senderFrame: { readonly url: string } | null | undefined;
  readonly sender: unknown;
}

/** Is `url` a page of the app itself (app://vmchan/...)? */
export function isAppUrl(url: string | undefined | null): boolean {
  if (typeof url !== 'string') return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (
    u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST && u.username === '' && u.password === ''
  );
}

export interface IpcHandlerOptions {
  /** ApiService.execute: checks the command itself and never throws. */
  execute(command: unknown): Promise<Result<unknown>>;
  /** The screen (batch bridge) of a window's webContents, if it has one. */
  ackFor(sender: unknown): ((seq: number) => boolean) | undefined;
  /** Where refusals are reported (one line each). */
  log?: (line: string) => void;
  /**
   * The person's agreement to what a command reaches (files, a non-loopback
   * address): true when every path was chosen in a native file dialog or
   * confirmed in a native message box (main.ts). Without it such commands
   * are refused: the window alone never writes a file the user did not pick.
   */
  confirmReach?: (reach: Reach[]) => Promise<boolean>;
}

export interface IpcHandlers {
  /** ipcMain.handle(IPC.request, ...) */
  request(event: IpcEventLike, payload: unknown): Promise<Result<unknown>>;
  /** ipcMain.on(IPC.ack, ...) */
  ack(event: IpcEventLike, payload: unknown): void;
}

export function createIpcHandlers(options: IpcHandlerOptions): IpcHandlers {
  const log = options.log ?? ((line: string) => process.stderr.write(`vmchan: ${line}\n`));
  const trusted = (event: IpcEventLike, what: string): boolean => {
    const url = event.senderFrame?.url;
    if (isAppUrl(url)) return true;
    log(`${what} from a foreign frame refused (${url ?? 'no frame'})`);
    return false;
  };
  return {
    async request(event, payload) {
      if (!trusted(event, 'request')) {
        return fail('Refused', 'requests are taken only from the app’s own page');
      }
      const reach = reachOf(payload);
      if (reach.length > 0 && !(await (options.confirmReach?.(reach) ?? Promise.resolve(false)))) {
        log(`request refused, not chosen in a dialog: ${describeReach(reach)}`);
        return fail('Refused', `not chosen in a file dialog: ${describeReach(reach)}`);
      }
      return options.execute(payload);
    },
    ack(event, payload) {
      if (!trusted(event, 'ack')) return;
      const seq = AckSchema.safeParse(payload);
      if (!seq.success) {
        log(`malformed ack refused: ${describeIssues(seq.error)}`);
        return;
      }
      options.ackFor(event.sender)?.(seq.data);
    },
  };
}

/** Check a batch before it is sent to a window; null (and a log line) when it breaks the contract. */
export function checkedBatch(batch: Batch, log: (line: string) => void): Batch | null {
  const r = BatchSchema.safeParse(batch);
  if (r.success) return r.data;
  log(`batch not sent, it breaks the contract: ${describeIssues(r.error)}`);
  return null;
}

/** A menu message (main to window): the action, and the file a native dialog chose. */
export const MenuMessageSchema = z.strictObject({
  action: MenuActionSchema,
  path: z.string().min(1).max(4096).optional(),
});
export type MenuMessage = z.infer<typeof MenuMessageSchema>;

/** The part of Electron's WebFrameMain a menu message is sent through. */
export interface MenuTargetLike {
  readonly url: string;
  isDestroyed?(): boolean;
  send(channel: string, payload: unknown): void;
}

/**
 * Send a menu action to the window's main frame, only when that frame shows
 * the app itself (a menu action never reaches a foreign page) and the
 * message matches the contract. True when it was sent.
 */
export function sendMenuMessage(
  target: MenuTargetLike | null | undefined,
  action: MenuAction,
  filePath: string | undefined,
  log: (line: string) => void,
): boolean {
  if (target === null || target === undefined || target.isDestroyed?.() === true) return false;
  if (!isAppUrl(target.url)) {
    log(`menu action ${action} not sent to a foreign frame (${target.url || 'no url'})`);
    return false;
  }
  const r = MenuMessageSchema.safeParse({
    action,
    ...(filePath === undefined ? {} : { path: filePath }),
  });
  if (!r.success) {
    log(`menu action not sent, it breaks the contract: ${describeIssues(r.error)}`);
    return false;
  }
  target.send(IPC.menu, r.data);
  return true;
}
