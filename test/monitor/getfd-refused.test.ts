/**
 * H7 where the native part is missing (no C compiler at `npm run build`):
 * the build goes on and says so in one line, and getfd and add-fd are
 * refused with the reason and the way to get it, instead of QEMU's "No file
 * descriptor supplied" (which would wrongly blame the client). The
 * descriptor-passing path itself is tested in getfd-run.test.ts.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { QMP_COMMANDS, runCommand, type CommandContext } from '../../core/monitor/qmp-commands.js';
import { MonitorFds } from '../../core/monitor/monitor-fds.js';
import { QDict } from '../../core/monitor/qobject.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import { ROOT } from '../lab/helpers.js';

const REASON =
  'its native part build/fdpass.node is not built (it needs a C compiler: apt-get install build-essential, then npm run build)';

function context(take: ReturnType<NonNullable<CommandContext['monitor']>['takeDescriptor']>) {
  return {
    machine: {},
    hub: {},
    monitor: { fds: new MonitorFds(), takeDescriptor: () => take },
  } as unknown as CommandContext;
}

async function run(name: string, ctx: CommandContext, args: Record<string, unknown>) {
  const command = QMP_COMMANDS.get(name);
  if (command === undefined) throw new Error(`no ${name}`);
  const raw = new QDict();
  for (const [k, v] of Object.entries(args)) raw.set(k, v as never);
  return runCommand(command, ctx, raw);
}

describe('H7 without the native part', () => {
  it('H7 getfd and add-fd say why and how to build it; with it and no descriptor, QEMU error', async () => {
    const refused = context({ refused: REASON });
    for (const [name, args] of [
      ['getfd', { fdname: 'x' }],
      ['add-fd', {}],
    ] as const) {
      const r = await run(name, refused, args);
      expect(isQemuError(r) && r.message).toBe(
        `vmchan does not emulate descriptors passed over the monitor here: ${REASON}; pass the descriptor to vmchan run and use -add-fd`,
      );
    }
    const none = await run('getfd', context(null), { fdname: 'x' });
    expect(isQemuError(none) && none.message).toBe('No file descriptor supplied via SCM_RIGHTS');
  });

  it('H7 the build goes on without a C compiler and says what is missing', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-native.js')], {
      env: { ...process.env, CC: 'vmchan-no-such-compiler' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^vmchan: no C compiler \(vmchan-no-such-compiler: .*\); building without build\/fdpass\.node: QMP getfd and add-fd will be refused \(apt-get install build-essential, then npm run build\)\n$/,
    );
  });
});
