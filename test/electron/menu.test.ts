import { describe, expect, it, vi } from 'vitest';
import type { MenuItemConstructorOptions } from 'electron';
import { MenuActionSchema } from '../../core/api/contract/contract.js';
import { menuTemplate } from '../../electron/menu.js';

function items(menu: MenuItemConstructorOptions[], label: string): MenuItemConstructorOptions[] {
  const top = menu.find((m) => m.label === label);
  return (top?.submenu as MenuItemConstructorOptions[]) ?? [];
}

function names(list: MenuItemConstructorOptions[]): string[] {
  return list.filter((i) => i.type !== 'separator').map((i) => i.label ?? String(i.role));
}

describe('the application menu', () => {
  const hooks = () => ({
    send: vi.fn(),
    openCapture: vi.fn(),
    saveCapture: vi.fn(),
    openDocs: vi.fn(),
  });

  it('has File, View and Help', () => {
    const h = hooks();
    const menu = menuTemplate({ dev: false, ...h });
    expect(menu.map((m) => m.label)).toEqual(['&File', '&View', '&Help']);
    expect(names(items(menu, '&File'))).toEqual([
      'Open Capture…',
      'Save Capture…',
      'Import Configuration…',
      'Export Configuration…',
      'Attach to QEMU…',
      'Detach',
      'quit',
    ]);
    expect(names(items(menu, '&View'))).toEqual([
      'reload',
      'forceReload',
      'resetZoom',
      'zoomIn',
      'zoomOut',
      'togglefullscreen',
    ]);
    expect(names(items(menu, '&Help'))).toEqual(['About vmchan', 'Documentation']);
    const click = (menuLabel: string, label: string): void =>
      (items(menu, menuLabel).find((i) => i.label === label)!.click as () => void)();
    click('&File', 'Import Configuration…');
    click('&File', 'Export Configuration…');
    click('&Help', 'About vmchan');
    expect(h.send.mock.calls).toEqual([['import'], ['export'], ['about']]);
    click('&File', 'Open Capture…');
    click('&File', 'Save Capture…');
    click('&Help', 'Documentation');
    expect(h.openCapture).toHaveBeenCalledOnce();
    expect(h.saveCapture).toHaveBeenCalledOnce();
    expect(h.openDocs).toHaveBeenCalledOnce();
  });

  it('File > Attach to QEMU… and Detach ask the window, as the toolbar does', () => {
    const h = hooks();
    const file = items(menuTemplate({ dev: false, ...h }), '&File');
    const attach = file.find((i) => i.label === 'Attach to QEMU…')!;
    const detach = file.find((i) => i.label === 'Detach')!;
    // next to each other, after the configuration items, before Quit
    expect(file.indexOf(detach)).toBe(file.indexOf(attach) + 1);
    expect(file[file.indexOf(attach) - 1]?.type).toBe('separator');
    expect(file[file.indexOf(detach) + 1]?.type).toBe('separator');
    (attach.click as () => void)();
    (detach.click as () => void)();
    expect(h.send.mock.calls).toEqual([['attach'], ['detach']]);
    expect(h.openCapture).not.toHaveBeenCalled();
  });

  it('every action a menu item sends is in the contract', () => {
    const sent: unknown[] = [];
    const menu = menuTemplate({
      dev: true,
      send: (a) => sent.push(a),
      openCapture: () => {},
      saveCapture: () => {},
      openDocs: () => {},
    });
    const walk = (list: MenuItemConstructorOptions[]): void => {
      for (const item of list) {
        if (typeof item.click === 'function') (item.click as () => void)();
        if (Array.isArray(item.submenu)) walk(item.submenu);
      }
    };
    walk(menu);
    expect(sent).toEqual(['import', 'export', 'attach', 'detach', 'about']);
    for (const a of sent) expect(MenuActionSchema.safeParse(a).success, String(a)).toBe(true);
  });

  it('offers the developer tools only in development', () => {
    expect(names(items(menuTemplate({ dev: false, ...hooks() }), '&View'))).not.toContain(
      'toggleDevTools',
    );
    expect(names(items(menuTemplate({ dev: true, ...hooks() }), '&View'))).toContain(
      'toggleDevTools',
    );
  });
});
