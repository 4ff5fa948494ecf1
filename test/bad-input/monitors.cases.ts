/**
 * Bad monitor and agent input (issue 13 corpus): QMP and qemu-ga lines
 * with the error class and the words of the description QEMU 7.2 answers;
 * HMP lines with the words of the one-line answer.
 */
export interface JsonCase {
  line: string;
  klass: string;
  desc: RegExp;
}
export interface HmpCase {
  line: string;
  answer: RegExp;
}

export const QMP_CASES: JsonCase[] = [
  {
    line: '{"execute": "no-such-command"}',
    klass: 'CommandNotFound',
    desc: /^The command no-such-command has not been found$/,
  },
  { line: '{"execute": 1}', klass: 'GenericError', desc: /'execute'/ },
  {
    line: '{"execute": "query-status", "arguments": 5}',
    klass: 'GenericError',
    desc: /'arguments'/,
  },
  { line: '{"execute": "query-status", "bogus": 1}', klass: 'GenericError', desc: /'bogus'/ },
  { line: '{}', klass: 'GenericError', desc: /'execute'/ },
  { line: '[]', klass: 'GenericError', desc: /object/i },
  { line: '42', klass: 'GenericError', desc: /object/i },
  { line: '"query-status"', klass: 'GenericError', desc: /object/i },
  { line: '{"execute": "device_add"}', klass: 'GenericError', desc: /driver/ },
  {
    line: '{"execute": "device_add", "arguments": {"driver": "no-such-driver"}}',
    klass: 'GenericError',
    desc: /no-such-driver/,
  },
  {
    line: '{"execute": "device_add", "arguments": {"driver": "virtserialport", "bus": "nope.0"}}',
    klass: 'GenericError',
    desc: /nope\.0/,
  },
  {
    line: '{"execute": "device_add", "arguments": {"driver": "virtserialport", "nr": "x"}}',
    klass: 'GenericError',
    desc: /nr/,
  },
  {
    line: '{"execute": "device_add", "arguments": {"driver": "virtserialport", "chardev": "missing"}}',
    klass: 'GenericError',
    desc: /missing/,
  },
  { line: '{"execute": "device_del"}', klass: 'GenericError', desc: /id/ },
  {
    line: '{"execute": "device_del", "arguments": {"id": "ghost"}}',
    klass: 'DeviceNotFound',
    desc: /ghost/,
  },
  { line: '{"execute": "chardev-add"}', klass: 'GenericError', desc: /id/ },
  {
    line: '{"execute": "chardev-add", "arguments": {"id": "x"}}',
    klass: 'GenericError',
    desc: /backend/,
  },
  {
    line: '{"execute": "chardev-add", "arguments": {"id": "x", "backend": {"type": "bogus"}}}',
    klass: 'GenericError',
    desc: /bogus/,
  },
  {
    line: '{"execute": "chardev-add", "arguments": {"id": "x", "backend": {"type": "ringbuf", "data": {"size": 3}}}}',
    klass: 'GenericError',
    desc: /power of two/,
  },
  {
    line: '{"execute": "chardev-add", "arguments": {"id": "c1", "backend": {"type": "null", "data": {}}}}',
    klass: 'GenericError',
    desc: /c1/,
  },
  {
    line: '{"execute": "chardev-remove", "arguments": {"id": "ghost"}}',
    klass: 'GenericError',
    desc: /ghost/,
  },
  {
    line: '{"execute": "chardev-remove", "arguments": {"id": "c1"}}',
    klass: 'GenericError',
    desc: /c1/,
  },
  {
    line: '{"execute": "qom-list", "arguments": {"path": "/nope"}}',
    klass: 'DeviceNotFound',
    desc: /nope/,
  },
  {
    line: '{"execute": "qom-get", "arguments": {"path": "/machine", "property": "nope"}}',
    klass: 'DeviceNotFound',
    desc: /^Device '\/machine' not found$/,
  },
  {
    line: '{"execute": "x-query-virtio-status", "arguments": {"path": "/nope"}}',
    klass: 'GenericError',
    desc: /nope/,
  },
  {
    line: '{"execute": "human-monitor-command"}',
    klass: 'CommandNotFound',
    desc: /^The command human-monitor-command has not been found$/,
  },
  {
    line: '{"execute": "qmp_capabilities", "arguments": {"enable": ["bogus"]}}',
    klass: 'GenericError',
    desc: /bogus|capabilit/i,
  },
  {
    line: '{"execute": "query-status", "id": {"a": 1}, "arguments": {"x": 1}}',
    klass: 'GenericError',
    desc: /'x'/,
  },
  {
    line: '{"execute": "query-chardev", "arguments": {"verbose": true}}',
    klass: 'GenericError',
    desc: /'verbose'/,
  },
];

/** Lines the JSON lexer or parser refuses: QEMU answers these with a GenericError too. */
export const QMP_SYNTAX_CASES: JsonCase[] = [
  { line: '{"execute": }', klass: 'GenericError', desc: /JSON parse error/ },
  { line: '{"execute" "query-status"}', klass: 'GenericError', desc: /JSON parse error/ },
  { line: '{"execute": "query-status",}', klass: 'GenericError', desc: /JSON parse error/ },
  { line: '{"execute": tru}', klass: 'GenericError', desc: /JSON parse error/ },
  { line: '{"execute": "\\x"}', klass: 'GenericError', desc: /JSON parse error|escape/i },
];

export const HMP_CASES: HmpCase[] = [
  { line: 'no_such_command', answer: /^unknown command: 'no_such_command'\r?\n?$/ },
  { line: 'info no_such_thing', answer: /info|no_such_thing/ },
  { line: 'device_add', answer: /driver|Parameter/ },
  { line: 'device_add no-such-driver', answer: /no-such-driver/ },
  { line: 'device_add virtserialport,bus=nope.0', answer: /nope\.0/ },
  { line: 'device_add virtserialport,nr=abc', answer: /nr/ },
  { line: 'device_del', answer: /^device_del: string expected$/ },
  { line: 'device_del ghost', answer: /ghost/ },
  { line: 'chardev-add', answer: /^chardev-add: string expected$/ },
  { line: 'chardev-add bogus,id=x', answer: /bogus/ },
  { line: 'chardev-add ringbuf,id=r,size=3', answer: /power of two/ },
  { line: 'chardev-remove ghost', answer: /ghost/ },
  { line: 'ringbuf_write ghost hello', answer: /ghost/ },
  { line: 'ringbuf_read ghost 10', answer: /ghost/ },
  { line: 'ringbuf_read c1 abc', answer: /integer|number|abc|invalid/i },
  { line: 'qom-list /nope', answer: /^unknown command: 'qom-list'/ },
  { line: 'qom-get /machine nope', answer: /^unknown command: 'qom-get'/ },
];

export const QGA_CASES: JsonCase[] = [
  { line: '{"execute": "no-such-command"}', klass: 'CommandNotFound', desc: /no-such-command/ },
  { line: '{"execute": 1}', klass: 'GenericError', desc: /'execute'/ },
  {
    line: '{}',
    klass: 'GenericError',
    // qemu-ga 7.2 as it answers (test/qemu/agent-fifo-real.test.ts)
    desc: /^QMP input lacks member 'execute'$/,
  },
  { line: '[]', klass: 'GenericError', desc: /object/i },
  { line: '7', klass: 'GenericError', desc: /object/i },
  { line: '{"execute": "guest-sync"}', klass: 'GenericError', desc: /id/ },
  {
    line: '{"execute": "guest-sync", "arguments": {"id": "x"}}',
    klass: 'GenericError',
    desc: /id/,
  },
  { line: '{"execute": "guest-ping", "arguments": {"x": 1}}', klass: 'GenericError', desc: /'x'/ },
  { line: '{"execute": "guest-file-open"}', klass: 'GenericError', desc: /path/ },
  {
    line: '{"execute": "guest-file-open", "arguments": {"path": "/nope/x"}}',
    klass: 'GenericError',
    desc: /\/nope\/x/,
  },
  {
    line: '{"execute": "guest-file-read", "arguments": {"handle": 999}}',
    klass: 'GenericError',
    desc: /999|handle/,
  },
  {
    line: '{"execute": "guest-file-write", "arguments": {"handle": 999, "buf-b64": "aGk="}}',
    klass: 'GenericError',
    desc: /999|handle/,
  },
  {
    line: '{"execute": "guest-file-close", "arguments": {"handle": 999}}',
    klass: 'GenericError',
    desc: /999|handle/,
  },
  {
    line: '{"execute": "guest-file-close", "arguments": {"handle": "x"}}',
    klass: 'GenericError',
    desc: /handle/,
  },
  {
    line: '{"execute": "guest-exec", "arguments": {}}',
    klass: 'CommandNotFound',
    desc: /path|guest-exec|not/,
  },
  { line: '{"execute": }', klass: 'GenericError', desc: /JSON parse error|Invalid JSON/ },
  {
    line: '{"execute": "guest-ping",}',
    klass: 'GenericError',
    desc: /JSON parse error|Invalid JSON/,
  },
];
