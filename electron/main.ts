/**
 * The desktop shell, kept thin: one window on the app:// protocol, a
 * sandboxed renderer with context isolation and no Node, one preload object,
 * IPC checked for its sender and its schema (ipc.ts), navigation and new
 * windows denied, permissions refused, and the engine in ApiService under
 * plain Node code (core/). Nothing here knows about ports or chardevs.
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session, shell } from 'electron';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IPC, type MenuAction } from '../core/api/contract/contract.js';
import { describeReach, type Reach } from '../core/api/contract/reach.js';
import { ApiService, type Screen } from '../core/api/server/service.js';
import { VERSION } from '../core/version.js';
import {
  APP_ENTRY,
  APP_SCHEME,
  checkedBatch,
  createIpcHandlers,
  isAppUrl,
  sendMenuMessage,
} from './ipc.js';
import { menuTemplate } from './menu.js';
import { appResponse } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/electron -> dist/renderer (packaged: the same layout inside app.asar). */
const RENDERER_DIR = path.join(here, '..', 'renderer');
const PRELOAD = path.join(here, 'preload.cjs');
const DEV = !app.isPackaged && process.env['VMCHAN_DEV'] === '1';
const DOCS_URL = 'https://github.com/vmchan/vmchan#readme';

const log = (line: string): void => {
  process.stderr.write(`vmchan: ${line}\n`);
};

// Before ready: app:// is a standard, secure origin (fetch, CSP 'self' work as on https).
protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);
app.enableSandbox();

// Every web contents, now or later: no navigation away, no new windows, no webviews.
app.on('web-contents-created', (_event, contents) => {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-frame-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
});

const screens = new Map<Electron.WebContents, Screen>();

function attachScreen(service: ApiService, win: BrowserWindow): void {
  const contents = win.webContents;
  const detach = (): void => {
    screens.get(contents)?.close();
    screens.delete(contents);
  };
  contents.on('did-start-loading', detach);
  contents.on('destroyed', detach);
  contents.on('did-finish-load', () => {
    detach();
    if (!isAppUrl(contents.getURL())) return;
    const screen = service.attachScreen((batch) => {
      const checked = checkedBatch(batch, log);
      if (checked !== null && !contents.isDestroyed()) contents.send(IPC.batch, checked);
    });
    screens.set(contents, screen);
  });
}

async function main(): Promise<void> {
  await app.whenReady();
  protocol.handle(APP_SCHEME, async (request) => {
    const r = await appResponse(request.url, RENDERER_DIR);
    return new Response(r.body as ConstructorParameters<typeof Response>[0], {
      status: r.status,
      headers: r.headers,
    });
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) =>
    callback(false),
  );
  session.defaultSession.setPermissionCheckHandler(() => false);

  const service = await ApiService.create({
    face: 'electron',
    dialogs: true,
    publishSessions: true,
  });
  // Paths the person picked in a native file dialog this session; anything else is asked natively.
  const chosen = new Set<string>();
  let window: BrowserWindow | null = null;
  const confirmReach = async (reach: Reach[]): Promise<boolean> => {
    const rest = reach.filter((r) => r.kind === 'listen' || !chosen.has(r.target));
    if (rest.length === 0) return true;
    const options = {
      type: 'warning' as const,
      buttons: ['Cancel', 'Allow'],
      defaultId: 0,
      cancelId: 0,
      message: `Let vmchan ${describeReach(rest)}?`,
    };
    const answer =
      window === null
        ? await dialog.showMessageBox(options)
        : await dialog.showMessageBox(window, options);
    return answer.response === 1;
  };
  const handlers = createIpcHandlers({
    confirmReach,
    execute: (command) => service.execute(command),
    ackFor: (sender) => {
      const screen = screens.get(sender as Electron.WebContents);
      return screen === undefined ? undefined : (seq) => screen.ack(seq);
    },
    log,
  });
  ipcMain.handle(IPC.request, (event, payload) => handlers.request(event, payload));
  ipcMain.on(IPC.ack, (event, payload) => handlers.ack(event, payload));

  const win = new BrowserWindow({
    width: 1440,
    height: 900,
    minWidth: 960,
    minHeight: 600,
    title: `vmchan ${VERSION}`,
    show: false,
    backgroundColor: '#14171c',
    webPreferences: {
      preload: PRELOAD,
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      devTools: DEV,
    },
  });
  window = win;
  win.once('ready-to-show', () => win.show());
  attachScreen(service, win);

  // Menu actions go to the window's main frame only while it shows the app, checked against the contract.
  const send = (action: MenuAction, filePath?: string): void => {
    if (!win.isDestroyed()) sendMenuMessage(win.webContents.mainFrame, action, filePath, log);
  };
  Menu.setApplicationMenu(
    Menu.buildFromTemplate(
      menuTemplate({
        dev: DEV,
        send: (action) => send(action),
        openCapture: () => {
          void dialog
            .showOpenDialog(win, {
              title: 'Open capture',
              filters: [{ name: 'pcapng', extensions: ['pcapng'] }],
              properties: ['openFile'],
            })
            .then((r) => {
              const file = r.filePaths[0];
              if (r.canceled || file === undefined) return;
              chosen.add(file);
              send('open-capture', file);
            });
        },
        saveCapture: () => {
          void dialog
            .showSaveDialog(win, {
              title: 'Save capture',
              defaultPath: 'vmchan-capture.pcapng',
              filters: [{ name: 'pcapng', extensions: ['pcapng'] }],
            })
            .then((r) => {
              if (r.canceled || !r.filePath) return;
              chosen.add(r.filePath);
              send('save-capture', r.filePath);
            });
        },
        openDocs: () => void shell.openExternal(DOCS_URL),
      }),
    ),
  );

  app.on('window-all-closed', () => app.quit());
  app.on('will-quit', (event) => {
    event.preventDefault();
    void service.close().finally(() => app.exit(0));
  });
  await win.loadURL(APP_ENTRY);
}

main().catch((error: unknown) => {
  log(`cannot start: ${error instanceof Error ? error.message : String(error)}`);
  app.exit(1);
});
