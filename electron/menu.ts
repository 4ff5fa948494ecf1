/**
 * The application menu as data (Electron's MenuItemConstructorOptions), so
 * tests can read it without Electron running:
 *
 *   File: Open Capture…, Save Capture…, Import Configuration…, Export
 *         Configuration…, Attach to QEMU…, Detach, Quit
 *   View: Reload, Toggle Developer Tools (development only), zoom
 *   Help: About vmchan, Documentation
 */
import type { MenuItemConstructorOptions } from 'electron';
import type { MenuAction } from '../core/api/contract/contract.js';

export interface MenuHooks {
  /** Development build: the developer tools item is there. */
  dev: boolean;
  /** Ask the window to do something (open a dialog). */
  send(action: MenuAction): void;
  openCapture(): void;
  saveCapture(): void;
  openDocs(): void;
}

export function menuTemplate(hooks: MenuHooks): MenuItemConstructorOptions[] {
  const view: MenuItemConstructorOptions[] = [{ role: 'reload' }, { role: 'forceReload' }];
  if (hooks.dev) view.push({ role: 'toggleDevTools' });
  view.push(
    { type: 'separator' },
    { role: 'resetZoom' },
    { role: 'zoomIn' },
    { role: 'zoomOut' },
    { type: 'separator' },
    { role: 'togglefullscreen' },
  );
  return [
    {
      label: '&File',
      submenu: [
        { label: 'Open Capture…', accelerator: 'CmdOrCtrl+O', click: () => hooks.openCapture() },
        { label: 'Save Capture…', accelerator: 'CmdOrCtrl+S', click: () => hooks.saveCapture() },
        { type: 'separator' },
        {
          label: 'Import Configuration…',
          accelerator: 'CmdOrCtrl+I',
          click: () => hooks.send('import'),
        },
        {
          label: 'Export Configuration…',
          accelerator: 'CmdOrCtrl+E',
          click: () => hooks.send('export'),
        },
        { type: 'separator' },
        // The toolbar's dialog and command: the window knows whether it is attached.
        { label: 'Attach to QEMU…', click: () => hooks.send('attach') },
        { label: 'Detach', click: () => hooks.send('detach') },
        { type: 'separator' },
        { role: 'quit' },
      ],
    },
    { label: '&View', submenu: view },
    {
      label: '&Help',
      submenu: [
        { label: 'About vmchan', click: () => hooks.send('about') },
        { label: 'Documentation', click: () => hooks.openDocs() },
      ],
    },
  ];
}
