/** Bad libvirt XML (issue 13 corpus): each with the one line importConfig must answer. */
export interface XmlCase {
  name: string;
  xml: string;
  message: string | RegExp;
}

const dom = (devices: string): string =>
  `<domain type="kvm"><devices>${devices}</devices></domain>`;
const ctl = (attrs: string): string => dom(`<controller type="virtio-serial" ${attrs}/>`);
const NO_CONTROLLER = 'no virtio-serial controller in this XML (<controller type="virtio-serial">)';

export const XML_CASES: XmlCase[] = [
  {
    name: 'empty',
    xml: '',
    message: 'the XML is empty: paste a libvirt <domain> (or its <devices>)',
  },
  {
    name: 'blank',
    xml: '  \n\t ',
    message: 'the XML is empty: paste a libvirt <domain> (or its <devices>)',
  },
  {
    name: 'plain text',
    xml: 'hello world',
    message: 'this is not XML (no elements): paste a libvirt <domain> (or its <devices>)',
  },
  {
    name: 'a QEMU command line in the XML box',
    xml: '-device virtio-serial',
    message: 'this is not XML (no elements): paste a libvirt <domain> (or its <devices>)',
  },
  {
    name: 'unclosed devices',
    xml: '<domain><devices>',
    message:
      /^the XML is not well-formed \(closed <devices> left open at the end of the input \(line 1\)\) and has no virtio-serial controller$/,
  },
  {
    name: 'mismatched close',
    xml: '<domain><devices></domain>',
    message:
      /^the XML is not well-formed \(closed <devices> left open before <\/domain> \(line 1\)\) and has no virtio-serial controller$/,
  },
  {
    name: 'another document',
    xml: '<network><name>x</name></network>',
    message: 'the XML is a <network>, not a libvirt <domain> (or its <devices>)',
  },
  {
    name: 'a pool',
    xml: '<pool type="dir"/>',
    message: 'the XML is a <pool>, not a libvirt <domain> (or its <devices>)',
  },
  {
    name: 'undefined entity',
    xml: '<domain>&bogus;</domain>',
    message: 'the XML uses an undefined entity &bogus; (line 1)',
  },
  {
    name: 'undefined entity on line 3',
    xml: '<domain>\n<devices>\n&nbsp;</devices></domain>',
    message: 'the XML uses an undefined entity &nbsp; (line 3)',
  },
  { name: 'no controller', xml: dom(''), message: NO_CONTROLLER },
  { name: 'only a disk', xml: dom('<disk type="file"/>'), message: NO_CONTROLLER },
  {
    name: 'another controller type',
    xml: dom('<controller type="usb" index="0"/>'),
    message: NO_CONTROLLER,
  },
  {
    name: 'channel with an unknown source type, no controller',
    xml: dom('<channel type="bogus"><target type="virtio" name="a"/></channel>'),
    message:
      /^no virtio-serial controller in this XML, and its 1 device\(s\) were left out: channel 0: source type 'bogus' has no vmchan chardev; it is left out$/,
  },
  {
    name: 'attribute without quotes',
    xml: '<domain type=kvm/>',
    message: /^Attribute 'type' is without value\. \(line 1, column \d+\)$/,
  },
  {
    name: 'repeated attribute',
    xml: '<domain a="1" a="2"/>',
    message: /^Attribute 'a' is repeated\. \(line 1, column \d+\)$/,
  },
  {
    name: 'garbage after the root',
    xml: '<domain/>junk<',
    message: /invalid name|Unexpected|(line \d+, column \d+)$/,
  },
  {
    name: 'unclosed attribute quote',
    xml: '<domain type="kvm><devices/></domain>',
    message: /\(line \d+, column \d+\)$/,
  },
  { name: 'bad tag name', xml: '<1domain/>', message: /\(line \d+, column \d+\)$/ },
  {
    name: '10,000 nested tags',
    xml: '<a>'.repeat(10_000) + '</a>'.repeat(10_000),
    message: 'the XML nests elements too deeply (libvirt domain XML is a few levels deep)',
  },
  {
    name: '10,000 nested tags inside devices',
    xml: dom('<a>'.repeat(10_000) + '</a>'.repeat(10_000)),
    message: 'the XML nests elements too deeply (libvirt domain XML is a few levels deep)',
  },
  ...['abc', '-1', '1.5', ' '].map((index) => ({
    name: `controller index ${JSON.stringify(index)}`,
    xml: ctl(`index="${index}"`),
    message: new RegExp(
      `^<controller> #1: Cannot parse controller index ${index.replace(/[.+]/g, '\\$&')}$`,
    ),
  })),
  ...['-5', 'abc', '1.5', '0x'].map((ports) => ({
    name: `controller ports ${ports}`,
    xml: ctl(`index="0" ports="${ports}"`),
    message: new RegExp(`^<controller> #1: Invalid ports: ${ports.replace(/[.+]/g, '\\$&')}$`),
  })),
  {
    name: 'two controllers with one index',
    xml: dom(
      '<controller type="virtio-serial" index="0"/><controller type="virtio-serial" index="0"/>',
    ),
    message: "<controller> #2: Multiple 'virtio-serial' controllers with index '0'",
  },
];
