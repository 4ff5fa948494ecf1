import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  joinOpts,
  parseCompatChardev,
  splitOpts,
  splitShellWords,
  joinShellWords,
} from '../../core/machine/index.js';
import { parseSizeOpt, strtou64 } from '../../core/machine/qemu-options.js';

const kv = (params: string, implied?: string): Array<[string, string, string]> =>
  splitOpts(params, implied).map((p) => [p.key, p.value, p.form]);

describe('H2 QEMU key=value syntax (util/qemu-option.c)', () => {
  test('pairs, the implied first key, short-form booleans', () => {
    expect(kv('socket,path=/tmp/foo,server,nowait,id=foo', 'backend')).toEqual([
      ['backend', 'socket', 'implied'],
      ['path', '/tmp/foo', 'pair'],
      ['server', 'on', 'flag'],
      ['wait', 'off', 'flag'],
      ['id', 'foo', 'pair'],
    ]);
  });

  test('the implied key applies only to a first element without =', () => {
    expect(kv('id=x,socket', 'backend')).toEqual([
      ['id', 'x', 'pair'],
      ['socket', 'on', 'flag'],
    ]);
  });

  test(',, is a literal comma in values; keys end at = or ,', () => {
    expect(kv('path=/a,,b,name=x,,,,y', 'backend')).toEqual([
      ['path', '/a,b', 'pair'],
      ['name', 'x,,y', 'pair'],
    ]);
    expect(kv('file,,name', 'backend')).toEqual([['backend', 'file,name', 'implied']]);
  });

  test('a trailing comma ends the list (seed 000 `virtioconsole,chardev=foo,`)', () => {
    expect(kv('virtioconsole,chardev=foo,', 'driver')).toEqual([
      ['driver', 'virtioconsole', 'implied'],
      ['chardev', 'foo', 'pair'],
    ]);
  });

  test('values may hold = signs', () => {
    expect(kv('append=a=b c=d')).toEqual([['append', 'a=b c=d', 'pair']]);
  });

  test('joinOpts is splitOpts inverse for any values', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z_-]{0,6}$/), fc.string()), {
          minLength: 1,
          maxLength: 5,
        }),
        (pairs) => {
          const joined = joinOpts(pairs);
          expect(splitOpts(joined).map((p) => [p.key, p.value])).toEqual(pairs);
        },
      ),
    );
  });

  test('numbers as strtoull reads them: hex, octal, a wrapping minus, junk refused', () => {
    expect(strtou64('0x1f')).toBe(31n);
    expect(strtou64('010')).toBe(8n);
    expect(strtou64(' 42')).toBe(42n);
    expect(strtou64('-1')).toBe((1n << 64n) - 1n);
    expect(strtou64('12abc')).toBe('inval');
    expect(strtou64('')).toBe('inval');
    expect(strtou64('99999999999999999999999')).toBe('range');
  });

  test('sizes with suffixes (qemu_strtosz)', () => {
    expect(parseSizeOpt('size', '64K')).toBe(65536n);
    expect(parseSizeOpt('size', '1M')).toBe(1048576n);
    expect(parseSizeOpt('size', '1.5k')).toBe(1536n);
    expect(parseSizeOpt('size', '0x1000')).toBe(4096n);
    expect(parseSizeOpt('size', '1.5')).toEqual({
      message: "Parameter 'size' expects a non-negative number below 2^64",
    });
  });
});

describe('H2 legacy chardev shorthand (qemu_chr_parse_compat)', () => {
  const pairs = (spec: string): Array<[string, string]> | string => {
    const r = parseCompatChardev(spec, true);
    return r.ok ? r.pairs.map((p) => [p.key, p.value]) : r.message;
  };

  test('unix:PATH,server,nowait', () => {
    expect(pairs('unix:/tmp/qmp.sock,server,nowait')).toEqual([
      ['backend', 'socket'],
      ['path', '/tmp/qmp.sock'],
      ['server', 'on'],
      ['wait', 'off'],
    ]);
  });

  test('tcp:HOST:PORT,server and telnet:', () => {
    expect(pairs('tcp:127.0.0.1:4444,server')).toEqual([
      ['backend', 'socket'],
      ['host', '127.0.0.1'],
      ['port', '4444'],
      ['server', 'on'],
    ]);
    expect(pairs('telnet::23,server')).toEqual([
      ['backend', 'socket'],
      ['host', ''],
      ['port', '23'],
      ['server', 'on'],
      ['telnet', 'on'],
    ]);
  });

  test('bare names, paths, udp with a local address, vc sizes', () => {
    expect(pairs('stdio')).toEqual([['backend', 'stdio']]);
    expect(pairs('pipe:/tmp/p')).toEqual([
      ['backend', 'pipe'],
      ['path', '/tmp/p'],
    ]);
    expect(pairs('udp::5000@0.0.0.0:5001')).toEqual([
      ['backend', 'udp'],
      ['host', ''],
      ['port', '5000'],
      ['localaddr', '0.0.0.0'],
      ['localport', '5001'],
    ]);
    expect(pairs('vc:80Cx24C')).toEqual([
      ['backend', 'vc'],
      ['cols', '80'],
      ['rows', '24'],
    ]);
  });

  test('mon: only where a monitor may be muxed; unknown names are refused', () => {
    expect(parseCompatChardev('mon:stdio', false)).toEqual({
      ok: false,
      message: "mon: isn't supported in this context",
    });
    expect(pairs('nonsense')).toBe("'nonsense' is not a valid char driver");
    expect(pairs('tcp:nohostport')).toBe('parse error: tcp:nohostport');
  });
});

describe('pasting command lines (shell words)', () => {
  test('quotes, escapes, continuations, the $ prompt', () => {
    const r = splitShellWords(
      `$ qemu -append "console=ttyS0 \\"x\\"" \\\n  -name 'a b' c\\ d # a comment`,
    );
    expect(r).toEqual({
      ok: true,
      words: ['qemu', '-append', 'console=ttyS0 "x"', '-name', 'a b', 'c d'],
    });
  });

  test('joinShellWords quotes so that splitting gives the words back', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 6 }), (words) => {
        expect(splitShellWords(joinShellWords(words))).toEqual({ ok: true, words });
      }),
    );
  });
});
