/**
 * Explanations of the conformance rules (docs/CONFORMANCE.md) for people
 * learning virtio. Step mode names the rule behind every ring operation
 * (S11, P4, C6, M3, ...) and links here: a short title, a one-sentence
 * summary, and a few sentences on what the rule says, why it exists, and
 * what moves in the vring view when it applies.
 *
 * Pure data and pure functions only: the sandboxed renderer imports this
 * module, so it must not import anything (least of all node:*).
 *
 * Sources are named per rule. The wording is ours, not the specification's.
 * Where vmchan chose a policy (M6, S3, C8-C10, RESIZE order, PORT_NAME NUL,
 * D5 console drops, L6 'host gone', M11, M12, M14) the explanation says so.
 */

export interface RuleExplanation {
  id: string;
  family: 'C' | 'G' | 'S' | 'P' | 'M' | 'D' | 'L' | 'H' | 'Q';
  title: string;
  summary: string;
  explanation: string;
  source: string;
  seeAlso: string[];
}

type Family = RuleExplanation['family'];
type Entry = Omit<RuleExplanation, 'family'>;

export const FAMILY_NAMES: Readonly<Record<Family, string>> = Object.freeze({
  C: 'Console device',
  G: 'General',
  S: 'Split virtqueue',
  P: 'Packed virtqueue',
  M: 'Malformed input',
  D: 'Device behaviour (as QEMU)',
  L: 'Guest driver (as Linux)',
  H: 'Host side and chardevs',
  Q: 'Monitors (QMP and HMP)',
});

// Where the facts come from. Section numbers are those of virtio 1.2.
const SPEC_CONSOLE = 'virtio 1.2, 5.3 Console Device';
const SPEC_SPLIT = 'virtio 1.2, 2.7 Split Virtqueues';
const SPEC_PACKED = 'virtio 1.2, 2.8 Packed Virtqueues';
const QEMU_BUS = 'QEMU hw/char/virtio-serial-bus.c';
const QEMU_VIRTIO = 'QEMU hw/virtio/virtio.c';
const LINUX_CONSOLE = 'Linux drivers/char/virtio_console.c';

function family(f: Family, entries: readonly Entry[]): RuleExplanation[] {
  return entries.map((e) => ({ ...e, family: f }));
}

const CONSOLE = family('C', [
  {
    id: 'C0',
    title: 'Console device numbers and layout',
    summary:
      'The console is virtio device 3, with fixed queue numbers, three feature bits, a small configuration space and 8-byte control messages.',
    explanation:
      'Port 0 uses queues 0 (receive) and 1 (transmit), the control pair sits at 2 (device to driver) and 3 (driver to device), and port n uses 2n+2 and 2n+3; without MULTIPORT only queues 0 and 1 exist. ' +
      'The feature bits are SIZE (0), MULTIPORT (1) and EMERG_WRITE (2), and the configuration space holds le16 cols, le16 rows, le32 max_nr_ports and le32 emerg_wr at offsets 0, 2, 4 and 8. ' +
      "Control messages are { le32 id, le16 event, le16 value } with events 0 to 7 (DEVICE_READY, PORT_ADD, PORT_REMOVE, PORT_READY, CONSOLE_PORT, RESIZE, PORT_OPEN, PORT_NAME) and 0xFFFFFFFF as the 'no port' id. " +
      'Driver and device are written by different people, so without one fixed layout a guest would look for port 3 on the wrong queue. ' +
      'Two details are options in vmchan because implementations disagree: the RESIZE payload order (the spec puts cols first, Linux reads rows first, and vmchan defaults to rows then cols) and whether PORT_NAME ends in a NUL (QEMU sends one, which is the default). ' +
      'In the vring view the queue number tells you the port and direction: even queues carry data to the guest, odd queues carry data from it.',
    source: `${SPEC_CONSOLE}; ${QEMU_BUS}; ${LINUX_CONSOLE}`,
    seeAlso: ['C5', 'D1', 'D4', 'G1'],
  },
  {
    id: 'C1',
    title: 'Emergency write works before setup',
    summary:
      'A write to emerg_wr is accepted in any device state, even before features are negotiated or any queue is set up.',
    explanation:
      'EMERG_WRITE lets a guest print a character with nothing but a configuration-space store: no queues, no DRIVER_OK, not even feature acknowledgement. ' +
      'It exists for the moments when nothing else works, such as early boot or a kernel panic, when the rings are not set up yet or are the very thing that broke. ' +
      'A device that ignored emerg_wr until it was configured would lose exactly the messages that explain a failure. ' +
      'No ring moves when it applies: watch the configuration write at offset 8 and the console output instead.',
    source: `${SPEC_CONSOLE}, device configuration layout; QEMU hw/char/virtio-console.c`,
    seeAlso: ['C2', 'D1', 'G2'],
  },
  {
    id: 'C2',
    title: 'Low byte of emerg_wr printed',
    summary:
      'The device sends the least significant byte of each value written to emerg_wr to the console output.',
    explanation:
      'emerg_wr is a 32-bit field but carries one character per write: only bits 0 to 7 count and the rest are ignored. ' +
      'Fixing which byte matters keeps the meaning independent of how wide the guest access was. ' +
      'vmchan writes the byte to the first console whose host side is connected, and counts it as dropped when there is none. ' +
      'This is a configuration write, not a ring operation, so avail.idx and used.idx stay where they were.',
    source: `${SPEC_CONSOLE}, device configuration layout; QEMU hw/char/virtio-console.c`,
    seeAlso: ['C1', 'D1'],
  },
  {
    id: 'C3',
    title: 'No duplicate or out-of-range PORT_ADD',
    summary:
      'The device never announces a port that already exists, nor one whose id is max_nr_ports or more.',
    explanation:
      "PORT_ADD (event 1) makes the driver build the port's state and fill its receive queue. " +
      'A second PORT_ADD for a live port would make the driver create a duplicate device node or clobber its state, and an id at or beyond max_nr_ports names queues 2n+2 and 2n+3 that the driver never set up. ' +
      'vmchan sends PORT_ADD at most once per port between resets, and only for ports its registry accepted (D3). ' +
      'In the vring view each PORT_ADD fills one buffer of control queue 2, so used.idx there advances by one.',
    source: `${SPEC_CONSOLE}, device operation (multiport); ${QEMU_BUS}`,
    seeAlso: ['C4', 'D3', 'D4', 'D8'],
  },
  {
    id: 'C4',
    title: 'No PORT_REMOVE for unknown ports',
    summary: 'The device only removes a port it announced earlier with PORT_ADD.',
    explanation:
      'PORT_REMOVE (event 2) makes the driver tear a port down: wake its waiters, drop its device nodes and free its buffers. ' +
      'For a port the driver never heard of there is nothing to tear down, and a careless driver could follow state that does not exist. ' +
      'vmchan remembers which ports it announced and sends PORT_REMOVE only for those, at hot-unplug (D8). ' +
      'In the vring view it is one more buffer used on control queue 2.',
    source: `${SPEC_CONSOLE}, device operation (multiport); ${QEMU_BUS}`,
    seeAlso: ['C3', 'D8', 'L10'],
  },
  {
    id: 'C5',
    title: 'Receive writable, transmit readable',
    summary:
      'A device-readable buffer in a receive queue, or a device-writable buffer in a transmit queue, is a driver error.',
    explanation:
      'Receive queues (even numbers) carry data into the guest, so every descriptor in their chains must have WRITE set; transmit queues (odd numbers) carry data out, so none may. ' +
      'A buffer the wrong way round would have the device write into memory the driver offered as read-only, or send the host bytes from a buffer that was only meant to be filled. ' +
      'The device reports the error instead of using the buffer: vmchan raises it as M10 and the device enters NEEDS_RESET (G3). ' +
      "In the vring view, compare the W flag of each descriptor in the popped chain with the queue's direction.",
    source: `${SPEC_CONSOLE}, device operation`,
    seeAlso: ['M10', 'S2', 'S4', 'G3'],
  },
  {
    id: 'C6',
    title: 'Driver sends DEVICE_READY',
    summary:
      'When MULTIPORT is negotiated, the driver says it is ready by sending DEVICE_READY on the control transmit queue.',
    explanation:
      'Once its control queues run, the driver sends DEVICE_READY (event 0) with value 1; Linux uses the id 0xFFFFFFFF because the message concerns no port. ' +
      'It is the device’s cue to send PORT_ADD for every existing port: before it the driver may have no control receive buffers posted, so announcements would have nowhere to go. ' +
      'Without the handshake the device would have to guess when it is safe to talk. ' +
      'In the vring view a buffer is made available on queue 3 (avail.idx up by one), then PORT_ADD messages fill buffers on queue 2.',
    source: `${SPEC_CONSOLE}, driver requirements (multiport); ${LINUX_CONSOLE}`,
    seeAlso: ['C3', 'D4', 'L1'],
  },
  {
    id: 'C7',
    title: 'Console port answers PORT_OPEN 1',
    summary:
      'When the device marks a port with CONSOLE_PORT, the driver attaches it to a console and replies PORT_OPEN 1.',
    explanation:
      'CONSOLE_PORT (event 4) tells the driver that a port is a console rather than a plain serial port; Linux hooks it to an hvc terminal instead of a vport node. ' +
      'No user process opens a console, so the driver itself declares the guest side open by sending PORT_OPEN with value 1. ' +
      'Without that reply the device would believe nobody is listening and console output would go nowhere. ' +
      'In the vring view a CONSOLE_PORT used on queue 2 is followed by a PORT_OPEN 1 made available on queue 3.',
    source: `${SPEC_CONSOLE}, driver requirements (multiport); ${LINUX_CONSOLE}`,
    seeAlso: ['D4', 'L2', 'L3'],
  },
  {
    id: 'C8',
    title: 'Legacy native-endian fields (unsupported)',
    summary:
      "Legacy (pre-1.0) interfaces use the guest's native byte order; vmchan does not offer the legacy interface.",
    explanation:
      'Before virtio 1.0, ring and configuration fields were in whatever byte order the guest CPU used, which the host had to know or guess. ' +
      'Version 1.0 made every field little-endian so that a big-endian guest and a little-endian host agree without any side channel. ' +
      'vmchan requires VERSION_1 (bit 32), so every field in the vring view is little-endian and this rule never applies. ' +
      'A driver that does not accept VERSION_1 fails feature negotiation (G4) instead.',
    source: `${SPEC_SPLIT}, 2.7.3 Legacy Interfaces: A Note on Virtqueue Endianness; ${SPEC_CONSOLE}, legacy notes`,
    seeAlso: ['C9', 'C10', 'G1', 'G4'],
  },
  {
    id: 'C9',
    title: 'Legacy: ignore transmit used len',
    summary:
      'Legacy drivers are told not to trust used len on transmit queues; vmchan does not offer the legacy interface.',
    explanation:
      'Some early devices put the whole buffer length in used len for transmit buffers, although they had written nothing into them, so legacy drivers learned to ignore that field there. ' +
      'A modern device reports the bytes it wrote, which for a transmit buffer is 0 because the device only reads it. ' +
      'vmchan offers only the modern interface, so used len on a transmit queue is always meaningful. ' +
      'In the vring view, look at the used element {id, len} on an odd-numbered queue: len is 0.',
    source: `${SPEC_CONSOLE}, legacy interface notes`,
    seeAlso: ['C8', 'C10', 'D7', 'S9'],
  },
  {
    id: 'C10',
    title: 'Legacy: one-descriptor control buffers',
    summary:
      'Legacy drivers without ANY_LAYOUT put each control buffer in a single descriptor; vmchan does not offer the legacy interface.',
    explanation:
      'Early devices read a control message from the first descriptor instead of walking the chain, so legacy drivers that had not negotiated ANY_LAYOUT had to oblige. ' +
      'Modern devices must accept any split of a message over descriptors (S3), which vmchan does on every queue, control queues included. ' +
      'Because VERSION_1 is required, the ANY_LAYOUT question never arises here. ' +
      'In the vring view a control message may span several descriptors of one chain and is still one message.',
    source: `${SPEC_CONSOLE}, legacy interface notes; ${SPEC_SPLIT}, 2.7.4 Message Framing`,
    seeAlso: ['C8', 'C9', 'S3', 'M12'],
  },
]);

const GENERAL = family('G', [
  {
    id: 'G1',
    title: 'Transport feature bit numbers',
    summary:
      'INDIRECT_DESC is feature bit 28, EVENT_IDX 29, VERSION_1 32, RING_PACKED 34 and IN_ORDER 35.',
    explanation:
      'Bits 0 to 23 belong to the device type (for the console: SIZE, MULTIPORT and EMERG_WRITE), while bits 24 and up are reserved for features every device shares. ' +
      'Fixed numbers let one ring implementation serve every device type, and let each side leave off a bit it does not know. ' +
      'Each of these bits changes what you see: INDIRECT_DESC allows I descriptors that point at tables, EVENT_IDX replaces the suppression flags with used_event and avail_event, RING_PACKED replaces the three split areas with one descriptor ring, and IN_ORDER promises that buffers come back in the order they were offered. ' +
      'VERSION_1 marks the modern, little-endian interface, which vmchan always requires.',
    source: 'virtio 1.2, 2.2 Feature Bits and 6 Reserved Feature Bits',
    seeAlso: ['G4', 'S6', 'S11', 'P1', 'C8'],
  },
  {
    id: 'G2',
    title: 'Nothing happens before DRIVER_OK',
    summary:
      'The device uses no buffer and sends no used buffer notification until the driver has set DRIVER_OK.',
    explanation:
      'Until the driver sets DRIVER_OK (status value 4) it is still choosing features and placing rings, so its queues may be half written. ' +
      'A device that started early could follow a ring address that is not final or use a descriptor still being filled, and an interrupt could reach a driver with no handler yet. ' +
      'vmchan remembers kicks that arrive before DRIVER_OK and serves those queues once it is set. ' +
      'In the vring view, last_avail_idx and used.idx stay put before DRIVER_OK however far avail.idx has moved.',
    source: 'virtio 1.2, 2.1 Device Status Field and 3.1 Device Initialization',
    seeAlso: ['G3', 'G4', 'D4'],
  },
  {
    id: 'G3',
    title: 'Unrecoverable error sets NEEDS_RESET',
    summary:
      'On an error it cannot recover from, the device sets DEVICE_NEEDS_RESET, sends a configuration change notification if DRIVER_OK was set, and stops.',
    explanation:
      "A device cannot throw an exception at a guest; the status bit DEVICE_NEEDS_RESET (64) is how it says 'I am broken, reset me'. " +
      'The configuration change interrupt makes a running driver actually look, and stopping all processing guarantees the device never acts on memory the driver got wrong, which protects the host from a buggy or hostile guest. ' +
      'QEMU does the same in virtio_error(), which marks the device broken. ' +
      'vmchan ends every malformed input (M1 to M15) here and names the rule that was broken; the rings freeze, so avail.idx may still move while last_avail_idx and used.idx do not.',
    source: `virtio 1.2, 2.1 Device Status Field; ${QEMU_VIRTIO} (virtio_error)`,
    seeAlso: ['D9', 'M1', 'M8', 'G2'],
  },
  {
    id: 'G4',
    title: 'Feature dependencies and valid subsets',
    summary:
      'A device offers no feature without the features it depends on, accepts any valid subset the driver chooses, and refuses an invalid one by leaving FEATURES_OK clear.',
    explanation:
      'Some features only make sense together: RING_PACKED and IN_ORDER are defined only for VERSION_1 devices. ' +
      'The driver writes the subset it wants and sets FEATURES_OK; the device checks it and, for a bit it never offered or a feature without its dependency, leaves FEATURES_OK clear so the driver gives up. ' +
      'Without this check a device and a driver could each believe a different ring format or notification scheme is in use, and every index in the rings would be misread. ' +
      'The accepted set decides what the vring view shows: split or packed rings, suppression flags or event indices.',
    source: 'virtio 1.2, 2.2 Feature Bits and 3.1.1 Driver Requirements: Device Initialization',
    seeAlso: ['G1', 'G2', 'C8'],
  },
]);

const SPLIT = family('S', [
  {
    id: 'S1',
    title: 'Queue size and ring alignment',
    summary:
      'A split queue holds a power of 2 entries, at most 32768, with the descriptor table aligned to 16 bytes, the available ring to 2 and the used ring to 4.',
    explanation:
      'Ring positions are free-running 16-bit counters reduced modulo the size; with a power of 2 the reduction is a mask and stays consistent when the counter wraps at 65536, which would not hold for 48 entries. ' +
      '32768 is the largest power of 2 for which a 16-bit difference still tells a full ring from an empty one. ' +
      'The alignments match the widest field in each area, so no field straddles an alignment boundary. ' +
      'In the vring view the queue size bounds every slot: the slot of an index is idx & (size - 1).',
    source: `${SPEC_SPLIT} (size and alignment table)`,
    seeAlso: ['S8', 'P8', 'D2'],
  },
  {
    id: 'S2',
    title: 'Device never writes readable memory',
    summary:
      'The device writes only into device-writable buffers and its own used ring, never into readable buffers or the descriptor table.',
    explanation:
      'Readable buffers hold data the driver still owns (a message being sent, a control request), and the descriptor table belongs to the driver, which rewrites it as it recycles entries. ' +
      'A device writing there would corrupt guest data or race with the driver rebuilding a chain. ' +
      'vmchan scatters only into descriptors with the W flag and, in a split ring, writes nothing but the used ring and avail_event. ' +
      'In the vring view only used.idx, the used elements and avail_event change on the device’s turn; the descriptor table stays as the driver left it.',
    source: `${SPEC_SPLIT}, 2.7.5.1 Device Requirements: The Virtqueue Descriptor Table`,
    seeAlso: ['S4', 'S9', 'C5'],
  },
  {
    id: 'S3',
    title: 'Any descriptor layout; length capped',
    summary:
      'The device accepts a message split over descriptors in any way, but may cap how many descriptors one chain uses.',
    explanation:
      'A driver may put a 100-byte message in one descriptor, two, or ten; the device gathers the bytes in chain order and assumes no particular framing. ' +
      'Early devices that assumed fixed layouts forced drivers into workarounds (the legacy ANY_LAYOUT rule, C10), so the modern specification forbids the assumption. ' +
      "A cap is still allowed so a guest cannot make the device build arbitrarily long scatter lists: vmchan caps a chain at 1024 descriptors, QEMU's VIRTQUEUE_MAX_SIZE, counting indirect entries. " +
      'In the vring view a popped chain lists its descriptors, and the bytes read are the sum of their lengths however they are cut.',
    source: `${SPEC_SPLIT}, 2.7.4 Message Framing; ${QEMU_VIRTIO} (VIRTQUEUE_MAX_SIZE)`,
    seeAlso: ['S5', 'C10', 'M4'],
  },
  {
    id: 'S4',
    title: 'Writable descriptors after readable ones',
    summary: 'In a chain, every device-writable descriptor comes after every device-readable one.',
    explanation:
      'A chain is a request followed by room for the reply: the device reads from the front and writes into the back. ' +
      'The fixed order lets the device split a chain into an out list and an in list in one pass, and makes used len (bytes written) refer to the writable tail only. ' +
      'A readable descriptor after a writable one is an error (M5). ' +
      'In the vring view the W flags along a chain are a run of clear followed by a run of set, never the other way round.',
    source: `${SPEC_SPLIT}, 2.7.4 Message Framing (driver requirements)`,
    seeAlso: ['M5', 'S2', 'C5'],
  },
  {
    id: 'S5',
    title: 'Chain length bounded by queue size',
    summary:
      'A chain never has more descriptors than the queue size, and its total byte length fits in 32 bits.',
    explanation:
      'The table only has size descriptors, so a longer direct chain must visit one twice, which means it loops. ' +
      'The 32-bit bound matches the 32-bit used len and keeps the sum of lengths from overflowing. ' +
      'Both bounds turn a malicious chain into a detectable error (M3 for loops, M7 for overflow) instead of an endless walk or a wrapped total that lets the device write past a buffer. ' +
      'When a chain is popped, the vring view shows its descriptor count and total length.',
    source: `${SPEC_SPLIT}, 2.7.5.2 Driver Requirements: The Virtqueue Descriptor Table`,
    seeAlso: ['M3', 'M7', 'S3'],
  },
  {
    id: 'S6',
    title: 'Indirect descriptor rules',
    summary:
      'Indirect descriptors are used only with INDIRECT_DESC, their table holds len/16 entries starting at index 0, and they never nest nor carry NEXT.',
    explanation:
      'An indirect descriptor points at a separate table in guest memory, so one ring slot can describe a long chain. ' +
      'The table holds len/16 descriptors, and the chain inside starts at entry 0 and follows next fields within the table. ' +
      'Nesting is forbidden so the device needs at most one level of lookup, and INDIRECT with NEXT is forbidden because the table must end the chain: the device could not tell whether to continue in the table or in the ring. ' +
      'A driver that uses it without the feature may be talking to a device that does not understand it at all. ' +
      'In the vring view an I flag opens a sub-table numbered from 0, whose length must be a non-zero multiple of 16 (M4).',
    source: `${SPEC_SPLIT}, 2.7.5.3 Indirect Descriptors`,
    seeAlso: ['S7', 'M4', 'G1', 'P6'],
  },
  {
    id: 'S7',
    title: 'WRITE ignored on indirect pointer',
    summary:
      'The device ignores the WRITE flag on a descriptor that points to an indirect table, and accepts some direct descriptors followed by one indirect one.',
    explanation:
      'The pointer descriptor describes the table, which the device only reads, so its WRITE bit says nothing about the buffers; their directions come from the W flags inside the table. ' +
      'A device that trusted that bit would treat the table as a buffer to write, or reject valid chains. ' +
      'A chain may also start with ordinary descriptors and end with one indirect descriptor; that is unusual but valid, and a device must handle it. ' +
      'In the vring view read directions from the entries of the indirect table, not from the ring descriptor with the I flag.',
    source: `${SPEC_SPLIT}, 2.7.5.3.2 Device Requirements: Indirect Descriptors`,
    seeAlso: ['S6', 'S4'],
  },
  {
    id: 'S8',
    title: 'avail.idx moves forward, bounded',
    summary:
      'avail.idx never goes backwards and never runs more than the queue size ahead of what the device has consumed.',
    explanation:
      'avail.idx counts buffers ever offered, modulo 65536, and the device compares it with its own last_avail_idx to see how many are new. ' +
      'Going backwards would try to take back buffers the device may already be using, and running more than size ahead means ring slots were overwritten before the device read them. ' +
      'A correct driver does neither, so the device treats both as errors (M1). ' +
      'In the vring view avail.idx - last_avail_idx (mod 65536) is the number of pending heads, between 0 and the queue size, and last_avail_idx advances by one per pop.',
    source: `${SPEC_SPLIT}, 2.7.6 The Virtqueue Available Ring`,
    seeAlso: ['M1', 'M9', 'S1'],
  },
  {
    id: 'S9',
    title: 'used.len written before used.idx',
    summary:
      'The device writes the whole used element, len included, before it publishes the new used.idx.',
    explanation:
      'used.idx is the signal that tells the driver a new element is ready, so everything it covers must already be in memory. ' +
      'If the index went first, a driver on another CPU could read a stale id or len and hand a receive buffer to a program with the wrong byte count. ' +
      'Real devices put a write barrier between the two stores; vmchan writes id, then len, then used.idx, and checks that len does not exceed the chain’s writable bytes. ' +
      'In step mode a push shows used.ring[slot] = {id, len} written first and used.idx moving by one after it.',
    source: `${SPEC_SPLIT}, 2.7.8 The Virtqueue Used Ring`,
    seeAlso: ['S11', 'P8', 'M15'],
  },
  {
    id: 'S10',
    title: 'NO_INTERRUPT flag without EVENT_IDX',
    summary:
      'Without EVENT_IDX, avail.flags NO_INTERRUPT asks the device not to interrupt, and when it is clear the device must interrupt.',
    explanation:
      'A driver that is polling, or already working through a batch, does not want an interrupt for every used buffer, so it sets bit 0 of avail.flags. ' +
      'The flag is only a hint, not synchronised with the device, so the driver must cope with an odd interrupt anyway; but when it is clear the device has to interrupt, or the driver may sleep forever on a buffer that is already done. ' +
      'vmchan reads avail.flags at each interrupt decision and interrupts when bit 0 is clear. ' +
      'In the vring view, watch avail.flags next to the interrupt marker after a push.',
    source: `${SPEC_SPLIT}, 2.7.7 Used Buffer Notification Suppression`,
    seeAlso: ['S11', 'S12', 'P7'],
  },
  {
    id: 'S11',
    title: 'used_event decides interrupts',
    summary:
      'With EVENT_IDX, the device interrupts exactly when used.idx moves past the value the driver wrote in used_event, 16-bit wrap-around included.',
    explanation:
      'used_event, the last field of the available ring, names the used index after which the driver wants its next interrupt. ' +
      'The device compares the move of used.idx from old to new with it using vring_need_event: interrupt when (u16)(new - used_event - 1) < (u16)(new - old), which stays correct across the wrap at 65536. ' +
      'Interrupting too late loses a wakeup and stalls the driver, while interrupting on every buffer wastes the exits event indices were designed to save. ' +
      'Like QEMU, vmchan always interrupts on the first decision after reset and then uses the used.idx of the previous decision as old. ' +
      'In the vring view, compare used_event with the old and new used.idx shown in the interrupt step.',
    source: `${SPEC_SPLIT}, 2.7.7 Used Buffer Notification Suppression; ${QEMU_VIRTIO} (vring_need_event)`,
    seeAlso: ['S10', 'S12', 'P7', 'S9'],
  },
  {
    id: 'S12',
    title: 'Device publishes avail_event',
    summary:
      'With EVENT_IDX, the device tells the driver when to kick through avail_event and keeps used.flags at 0.',
    explanation:
      'avail_event, at the end of the used ring, mirrors used_event: the driver notifies the device only when its avail.idx moves past it. ' +
      'used.flags stays 0 because NO_NOTIFY has no meaning once event indices are in use. ' +
      'Kicks are costly exits to the host, so a busy device parks avail_event behind last_avail_idx to suppress them, and must move it forward again before it goes idle or buffers would sit unseen. ' +
      'The scheme is not synchronised, so an extra kick can always happen, and the device simply finds nothing new. ' +
      'In the vring view avail_event changes when notifications are switched on or off; switched on, vmchan sets it to the current avail.idx, as QEMU does.',
    source: `${SPEC_SPLIT}, 2.7.10 Available Buffer Notification Suppression`,
    seeAlso: ['S11', 'S10', 'P7'],
  },
]);

const PACKED = family('P', [
  {
    id: 'P1',
    title: 'AVAIL/USED bits and wrap counters',
    summary:
      "Both wrap counters start at 1; a descriptor is available when AVAIL equals the driver's counter and USED does not, and used when both equal the device's counter.",
    explanation:
      'A packed ring shares no indices: each side keeps its own position and a wrap counter that flips every time it passes the end of the ring. ' +
      'The driver offers a slot by writing AVAIL = wrap and USED = !wrap, and the device marks it used by setting both bits to its own counter. ' +
      'Comparing the bits with the counter tells a fresh descriptor from one left over from the previous lap, without reading anything the other side keeps. ' +
      "In the vring view each slot shows its A and U bits, the device's next available and next used positions show their wrap counters, and a wrap step appears when a counter flips.",
    source: `${SPEC_PACKED}: Driver and Device Ring Wrap Counters`,
    seeAlso: ['P2', 'P3', 'P8'],
  },
  {
    id: 'P2',
    title: 'Respect the AVAIL and USED handover',
    summary:
      'The device uses a descriptor only after seeing its AVAIL flip, and does not touch it again after flipping USED.',
    explanation:
      'The flags word is the handover point: reading it first, and the rest of the descriptor only after, ensures the address, length and id are the ones the driver finished writing. ' +
      'Once the device has written USED the slot belongs to the driver again, which may already be refilling it, so a late device write would corrupt the new buffer. ' +
      'vmchan also requires every descriptor of a NEXT list to be available when the head is, since the driver publishes the head last (P5). ' +
      'In step mode a pop reads the flags of a slot before anything else, and a slot marked used is not touched again until the driver offers it anew.',
    source: `${SPEC_PACKED}: Polling of available and used descriptors`,
    seeAlso: ['P1', 'P5', 'P3'],
  },
  {
    id: 'P3',
    title: 'Ring order in, completion order out',
    summary:
      'The device takes descriptors in ring order and writes used descriptors in the order it completes buffers.',
    explanation:
      'The device only ever polls the slot after the last one it took, so it consumes available descriptors strictly in ring order. ' +
      'Used descriptors are written from the device’s own used position, one per completed buffer, in whatever order buffers finish; the buffer id, not the slot, tells the driver which one came back. ' +
      'This lets a device finish a quick request before a slow one without leaving holes in the ring. ' +
      "In the vring view the device's next available position only moves forward, and a used slot may carry a different id from the one first offered there.",
    source: `${SPEC_PACKED}: descriptor ring, in-order and out-of-order use`,
    seeAlso: ['P1', 'P4', 'G1'],
  },
  {
    id: 'P4',
    title: 'A NEXT list is one buffer',
    summary:
      'Descriptors linked by NEXT form one buffer, whose id is in the last descriptor and which the device returns with a single used descriptor.',
    explanation:
      'Packed rings chain by position: a descriptor with NEXT continues in the following slot, so a list occupies consecutive slots. ' +
      'The id naming the buffer sits in the last descriptor of the list, and the device writes one used descriptor for the whole list at its next used position. ' +
      'The used descriptor does not say how many slots the list took, so the driver remembers the length per id and both sides skip ahead by it. ' +
      'Without that, the driver could not tell how many slots a completion frees. ' +
      "In the vring view a popped list covers several slots and the device's next available position jumps by that count, possibly flipping its wrap counter.",
    source: `${SPEC_PACKED}: Next Flag: Descriptor Chaining`,
    seeAlso: ['P3', 'P5', 'P6', 'M2'],
  },
  {
    id: 'P5',
    title: 'Head made available last',
    summary:
      "The driver publishes the head descriptor's flags only after the rest of the list, and never offers more descriptors than the queue size.",
    explanation:
      'The device starts at the head, and once it sees the head flip it reads the whole list. ' +
      'If the head were published first, the device could read the following slots while the driver is still writing them and use half-built descriptors. ' +
      'Offering more than size descriptors would overwrite slots the device still owns (M9). ' +
      "In the vring view a multi-slot buffer becomes available in one step, when the head's A and U bits change; the other slots were already set.",
    source: `${SPEC_PACKED}: Supplying Buffers to The Device`,
    seeAlso: ['P2', 'P4', 'M9'],
  },
  {
    id: 'P6',
    title: 'Packed indirect: only WRITE counts',
    summary:
      'In a packed indirect table only the WRITE flag of each entry matters, and an INDIRECT descriptor may not be part of a NEXT list.',
    explanation:
      'A packed indirect table is an array of len/16 descriptors read in order; AVAIL, USED and the id in its entries carry no meaning, so the device looks only at WRITE. ' +
      'The buffer id and the AVAIL/USED handover belong to the ring descriptor that points at the table. ' +
      'An indirect descriptor must stand alone in the ring, since inside a NEXT list it would be unclear where the buffer ends; vmchan treats that as an error. ' +
      "In the vring view an I slot opens a sub-table listing each entry's address, length and W flag.",
    source: `${SPEC_PACKED}: Indirect Flag: Scatter-Gather Support`,
    seeAlso: ['S6', 'P4', 'M4'],
  },
  {
    id: 'P7',
    title: 'Packed event suppression',
    summary:
      'Each event suppression structure holds the flags ENABLE (0), DISABLE (1) or DESC (2, only with EVENT_IDX), plus the offset and wrap bit that DESC uses.',
    explanation:
      "Instead of flags and event indices in the rings, a packed queue has two small structures: the driver's says when the device should interrupt, the device's says when the driver should kick. " +
      'ENABLE asks for every event, DISABLE for none, and DESC for one when the given slot, in the lap named by the wrap bit, is used or made available. ' +
      'The wrap bit is needed because a slot number repeats every lap, so without it an event could fire a lap early or late. ' +
      'DESC is only valid with EVENT_IDX; otherwise vmchan treats it as ENABLE, since an extra interrupt is harmless and a missing one hangs the driver. ' +
      'In step mode the interrupt and suppression steps print the mode and the offset and wrap they compared.',
    source: `${SPEC_PACKED}: Driver and Device Event Suppression`,
    seeAlso: ['S10', 'S11', 'S12', 'P1'],
  },
  {
    id: 'P8',
    title: 'Packed size; used len',
    summary:
      "A packed queue may have any size up to 32768, not only a power of 2, and a used descriptor's len is the number of bytes the device wrote.",
    explanation:
      'Each side tracks its position with a counter and a wrap bit instead of free-running 16-bit indices, so the position simply returns to 0 at the end and any size works. ' +
      'The 32768 limit leaves bit 15 of an event offset free for the wrap bit. ' +
      "The len of a used descriptor reports the bytes written into the buffer's writable part, so a receive buffer reports the data delivered and a transmit buffer reports 0. " +
      "In the vring view compare len in the used slot with the buffer's writable room; it never exceeds it.",
    source: `${SPEC_PACKED}: queue size; Element Address and Length`,
    seeAlso: ['S1', 'S9', 'P1'],
  },
]);

const MALFORMED = family('M', [
  {
    id: 'M1',
    title: 'avail.idx too far ahead',
    summary:
      'An avail.idx more than the queue size ahead of last_avail_idx is a fatal driver error.',
    explanation:
      'avail.idx - last_avail_idx is the number of new heads, and it can never exceed the queue size because the ring has no more slots. ' +
      'A larger value means the driver lost track or is lying, and a device that trusted it would walk stale ring entries, process buffers twice, or chew through up to 65535 bogus heads. ' +
      'QEMU reports the guest moving the index too far and marks the device broken. ' +
      'vmchan sets NEEDS_RESET (G3) naming M1; in the vring view avail.idx sits far past last_avail_idx and nothing is popped.',
    source: `${SPEC_SPLIT}, 2.7.6 The Virtqueue Available Ring; ${QEMU_VIRTIO}`,
    seeAlso: ['S8', 'M9', 'G3'],
  },
  {
    id: 'M2',
    title: 'Index outside the queue',
    summary:
      'A head or next index at or beyond the queue size (in a packed ring, such a buffer id) is a fatal driver error.',
    explanation:
      'Descriptor indices address a table of exactly size entries, so an index past the end points at guest memory that is not a descriptor, and trusting it would let a guest steer the device to arbitrary data. ' +
      'Packed rings have the same problem with buffer ids, which the device uses to track what is in flight. ' +
      'The device checks every index before reading through it and enters NEEDS_RESET (G3) naming M2. ' +
      'In the vring view the bad value is in the available ring entry or in the next field of the descriptor being walked.',
    source: `${SPEC_SPLIT}, 2.7.5 The Virtqueue Descriptor Table; ${QEMU_VIRTIO}`,
    seeAlso: ['M3', 'M9', 'P4', 'G3'],
  },
  {
    id: 'M3',
    title: 'Descriptor loops',
    summary:
      'A chain whose next links form a cycle, in the ring or inside an indirect table, is detected and refused.',
    explanation:
      'A cycle makes a naive device walk forever, hanging the emulator, or build an unbounded scatter list: a cheap denial of service from the guest. ' +
      'Because a valid chain can never be longer than the table it lives in (S5), counting descriptors detects a loop without remembering which were visited. ' +
      'vmchan stops at the queue size for a direct chain and at the table length for an indirect one, and enters NEEDS_RESET (G3) naming M3. ' +
      'In step mode the pop fails part-way through the walk, and the trace names the descriptor where the count ran out.',
    source: `${SPEC_SPLIT}, 2.7.5.2 Driver Requirements: The Virtqueue Descriptor Table; ${QEMU_VIRTIO}`,
    seeAlso: ['S5', 'M2', 'M7', 'G3'],
  },
  {
    id: 'M4',
    title: 'Bad indirect tables',
    summary:
      'An indirect table of length 0, a length that is not a multiple of 16, a nested INDIRECT entry or too many entries is a fatal driver error.',
    explanation:
      'The table length is the only thing that says how many entries it holds, so a length of 0 or one that cuts an entry in half cannot be read safely. ' +
      'Nesting would let a guest build trees of tables for the device to follow, and a huge table would make the device walk far more than any real request needs. ' +
      'vmchan caps one table at the same 1024 entries as a chain (S3) and enters NEEDS_RESET (G3) naming M4. ' +
      "In the vring view the I descriptor's len tells the story at a glance: len/16 is the entry count.",
    source: `${SPEC_SPLIT}, 2.7.5.3 Indirect Descriptors; ${QEMU_VIRTIO}`,
    seeAlso: ['S6', 'S3', 'P6', 'G3'],
  },
  {
    id: 'M5',
    title: 'Readable after writable descriptor',
    summary:
      'A device-readable descriptor that follows a device-writable one in the same chain is a fatal driver error.',
    explanation:
      'S4 puts the readable part of a chain first; a chain that breaks it cannot be split into request and reply without guessing. ' +
      'QEMU refuses such a chain as descriptors in the wrong order and marks the device broken, rather than reorder buffers and risk writing into what the driver meant as request data. ' +
      'vmchan does the same with NEEDS_RESET (G3) naming M5. ' +
      'In the vring view the W flags along the chain go from set back to clear at the offending descriptor.',
    source: `${SPEC_SPLIT}, 2.7.4 Message Framing; ${QEMU_VIRTIO} (virtqueue_split_pop)`,
    seeAlso: ['S4', 'C5', 'G3'],
  },
  {
    id: 'M6',
    title: 'Zero-length descriptors: a policy',
    summary:
      'Zero-length descriptors and chains follow an explicit policy: vmchan refuses them by default, as QEMU does, and can be set to allow them.',
    explanation:
      'A zero-length buffer moves no bytes, so accepting it costs the device nothing, but it is useless and often a sign of a driver bug. ' +
      "Implementations differ: QEMU's virtqueue_map_desc refuses any zero-sized descriptor and marks the device broken, and vmchan's default (zeroLengthDescriptors 'reject') does the same, raising M6 and NEEDS_RESET. " +
      "Its 'allow' option accepts such descriptors instead, as a lenient device may. " +
      'A chain with no descriptors at all cannot be expressed in a split ring, and in a packed ring vmchan always refuses it. ' +
      "In the vring view a zero-length descriptor shows len 0 and adds nothing to the chain's readable or writable total.",
    source: `vmchan policy (core/virtio/queue.ts ChainLimits); ${QEMU_VIRTIO} (virtqueue_map_desc)`,
    seeAlso: ['S3', 'M7', 'G3'],
  },
  {
    id: 'M7',
    title: 'Chain length overflows 32 bits',
    summary:
      'A chain whose descriptor lengths add up to more than 2^32 - 1 bytes is a fatal driver error.',
    explanation:
      'Each length is 32 bits, so a few large descriptors can sum past what a 32-bit total or used len can hold. ' +
      'A device adding them in 32-bit arithmetic would wrap to a small number, size its copies by the wrong total and could write past the real buffer. ' +
      'vmchan sums without overflow and enters NEEDS_RESET (G3) naming M7 as soon as the total passes the limit, before it checks whether the buffers lie in guest memory (M8). ' +
      'In the vring view the descriptor lengths of the popped chain show the overflow.',
    source: `${SPEC_SPLIT}, 2.7.5.2 Driver Requirements: The Virtqueue Descriptor Table`,
    seeAlso: ['S5', 'M8', 'G3'],
  },
  {
    id: 'M8',
    title: 'Address outside guest memory',
    summary:
      'Any ring, descriptor table or buffer range that does not lie wholly inside guest memory is a fatal driver error.',
    explanation:
      "Guest-physical addresses come straight from the guest and, on a real host, are translated into the emulator's own memory, so an unchecked range could read or overwrite host memory: the classic guest-to-host escape. " +
      'The whole range from addr to addr + len must be checked, not just its start, and the addition itself must not overflow. ' +
      'vmchan checks the rings when a queue is set up and every buffer after the chain walk, and enters NEEDS_RESET (G3) naming M8. ' +
      'In the vring view the fault names the address and length that fell outside memory; nothing is read or written through them.',
    source: `${QEMU_VIRTIO} (mapping descriptors to host memory); virtio 1.2, Virtqueues`,
    seeAlso: ['M7', 'S2', 'G3'],
  },
  {
    id: 'M9',
    title: 'Too many buffers in flight',
    summary:
      'Offering more buffers than the queue holds, or re-offering a head the device still owns, is a fatal driver error.',
    explanation:
      'A queue of size N has at most N buffers between available and used; beyond that the driver must be reusing descriptors the device is still processing. ' +
      'A device that accepted a reused head would serve two requests from the same memory and later return one of them twice. ' +
      'vmchan tracks every head in flight and refuses a repeat or an excess with NEEDS_RESET (G3) naming M9. ' +
      'In the vring view the in-flight list beside the rings shows the heads the device holds, and the offending head is already on it.',
    source: `${SPEC_SPLIT}, 2.7.6 The Virtqueue Available Ring; ${SPEC_PACKED}`,
    seeAlso: ['M1', 'M15', 'P5', 'G3'],
  },
  {
    id: 'M10',
    title: 'Wrong-direction buffers',
    summary:
      'A readable buffer in a receive queue or a writable buffer in a transmit queue (C5) is a fatal driver error.',
    explanation:
      'Each console queue carries data one way, so the direction of every descriptor in its chains is known in advance. ' +
      'Accepting a wrong one would make the device write received data into memory the driver offered as read-only (against S2), or send the host bytes from a buffer that was only meant to be filled. ' +
      "vmchan checks every popped chain against its queue's direction and enters NEEDS_RESET (G3) naming M10. " +
      'In the vring view the W flags disagree with the queue: a W on an odd queue, or a missing W on an even one.',
    source: `${SPEC_CONSOLE}, device operation; ${QEMU_BUS}`,
    seeAlso: ['C5', 'S2', 'D9', 'G3'],
  },
  {
    id: 'M11',
    title: 'Malformed control messages',
    summary:
      'A control message shorter than 8 bytes, for an unknown port, with an unknown event, or a DEVICE_READY or PORT_READY with value 0 is a driver error.',
    explanation:
      'Control messages steer port state on the host, so each field is checked before it is acted on: the 8-byte header must be complete, the id must name an existing port and the event must be one the device accepts. ' +
      'A READY message with value 0 is the guest reporting that it failed to set up the device or a port. ' +
      "QEMU only logs these cases (error_report) and carries on, and so does vmchan by default (D10), showing QEMU's line in the timeline; the malformedControl option 'needs-reset' is a vmchan extra for teaching that stops the device naming M11. " +
      'In the vring view look at the buffer just popped from control queue 3: its length and its decoded id, event and value.',
    source: `${QEMU_BUS} (handle_control_message); vmchan policy (malformedControl)`,
    seeAlso: ['D4', 'D9', 'C6', 'G3'],
  },
  {
    id: 'M12',
    title: 'Control receive buffer too small',
    summary:
      'A control receive buffer smaller than the message to deliver, or no buffer at all, must never lead to a write past a buffer.',
    explanation:
      'The device writes control messages into buffers the guest posted on queue 2, and a PORT_NAME message is longer than the 8-byte header. ' +
      "QEMU before 2.4 copied the message into the buffer's first descriptor without checking its length, which let a guest crash QEMU (CVE-2015-5745). " +
      'vmchan checks the writable length first and enters NEEDS_RESET (G3) naming M12 when it is too small. ' +
      "When no buffer is posted, the controlRxExhausted option decides: 'wait' (the default) holds messages until the guest posts one, 'drop' discards them as QEMU does, and 'needs-reset' treats it as M12. " +
      'In the vring view compare the writable length of the chain popped from queue 2 with the size of the message.',
    source: `${QEMU_BUS} (send_control_msg), CVE-2015-5745; vmchan policy (controlRxExhausted)`,
    seeAlso: ['C10', 'D4', 'L1', 'G3'],
  },
  {
    id: 'M13',
    title: 'Kick for a missing queue',
    summary: 'A notification for a queue index the device does not have is a fatal driver error.',
    explanation:
      'The driver names the queue it kicks by index; without MULTIPORT only queues 0 and 1 exist, and with it the count follows max_nr_ports. ' +
      'A device that looked the index up without a bounds check would read past its queue array, a host-side memory bug that one guest write could trigger. ' +
      'vmchan refuses it with NEEDS_RESET (G3) naming M13; a kick for a queue that exists but was never enabled is simply ignored, as in QEMU. ' +
      'In the vring view the notification names a queue number that has no ring to show.',
    source: `virtio 1.2, Driver Notifications; ${QEMU_VIRTIO}`,
    seeAlso: ['C0', 'D1', 'G3'],
  },
  {
    id: 'M14',
    title: 'Config access out of range',
    summary:
      'A configuration read or write beyond the end of the configuration space is refused and never served from outside it.',
    explanation:
      "The console's configuration space is 12 bytes with EMERG_WRITE and 8 without; an access past its end would touch whatever lies beyond the structure if the device trusted the offset and width. " +
      'vmchan checks offset plus width against the size and treats a violation as NEEDS_RESET (G3) naming M14. ' +
      'QEMU is more lenient: it answers such reads with all ones and ignores such writes, so vmchan is deliberately stricter to make the mistake visible. ' +
      'No ring moves; the fault names the offset and width of the bad access.',
    source: `virtio 1.2, Device Configuration Space; ${QEMU_VIRTIO} (virtio_config_read*)`,
    seeAlso: ['C0', 'C1', 'G3'],
  },
  {
    id: 'M15',
    title: 'Same head used twice',
    summary: 'The device never returns the same head twice, and a request to do so is refused.',
    explanation:
      'Each popped head is returned exactly once; a second used entry would report as complete a buffer the driver may already have reused, so it would free or read the wrong data. ' +
      'The device keeps an in-flight flag per head that push clears, and a push for a head whose flag is already clear is refused. ' +
      "In vmchan this guards the device's own code as much as the guest, and ends in NEEDS_RESET (G3) naming M15. " +
      'In the vring view the in-flight list shows the heads that may still be returned; used elements only ever name heads from it.',
    source: `${SPEC_SPLIT}, 2.7.8 The Virtqueue Used Ring; ${QEMU_VIRTIO}`,
    seeAlso: ['M9', 'S9', 'G3'],
  },
]);

const DEVICE = family('D', [
  {
    id: 'D1',
    title: 'Port count and offered features',
    summary:
      'As in QEMU, max_ports defaults to 31 and may be at most 511, MULTIPORT is offered only when max_ports > 1, and EMERG_WRITE is offered by default.',
    explanation:
      'Every port needs two queues and the control pair needs two more, and QEMU allows 1024 queues per device, which is where the 511-port limit comes from. ' +
      'With a single port there is nothing to multiplex, so the device leaves MULTIPORT off and the guest sees a plain console on queues 0 and 1. ' +
      "EMERG_WRITE is offered unless turned off, like QEMU's emergency-write property. " +
      'In the vring view a device with MULTIPORT negotiated has 2 × max_ports + 2 queues.',
    source: `${QEMU_BUS} (max_ports, VIRTIO_QUEUE_MAX); QEMU hw/char/virtio-console.c`,
    seeAlso: ['C0', 'C1', 'D2', 'M13'],
  },
  {
    id: 'D2',
    title: 'Data 128, control 32 entries',
    summary:
      'Data queues have 128 entries and control queues 32, as in QEMU, and both are configurable.',
    explanation:
      'These are the sizes QEMU gives the virtio-serial queues when it creates them. ' +
      "They bound how many buffers the guest can have in flight per queue (M9), and with Linux's page-sized receive buffers a data queue can hold 512 KiB waiting for a reader. " +
      'Control traffic is rare and small, hence the shorter ring. ' +
      'In the vring view the queue header shows the size, and every ring slot is an index modulo it.',
    source: `${QEMU_BUS} (virtio_add_queue)`,
    seeAlso: ['D1', 'S1', 'L1'],
  },
  {
    id: 'D3',
    title: 'Port numbering and refusals',
    summary:
      "Ports take their nr or the lowest free number, 0 is kept for a virtconsole, and every refusal uses QEMU 7.2's message in QEMU 7.2's check order.",
    explanation:
      'Port 0 is special because a device without MULTIPORT only has queues for port 0, which guests treat as the console, so a virtserialport may not take nr 0 and the first virtconsole without nr takes it. ' +
      "A duplicate number, a duplicate name, nr at or beyond max_ports, a full device and a duplicate qdev id are all refused with QEMU's text, prefixed with the bus type. " +
      'The order matters when several checks fail at once: QEMU 7.2 reports an occupied number before the reserved-0 rule, and vmchan matches it so scripts that parse the errors see the same thing. ' +
      'This rule lives on the host side: the rings do not move, but the refusal shows in the monitor and the event log.',
    source: `${QEMU_BUS} (virtser_port_device_realize), checked against QEMU 7.2`,
    seeAlso: ['C3', 'D1', 'D8', 'Q4'],
  },
  {
    id: 'D4',
    title: 'Control message flow',
    summary:
      'DEVICE_READY leads to PORT_ADD for every port, PORT_READY to CONSOLE_PORT, PORT_NAME and PORT_OPEN, and a guest PORT_OPEN to a VSERPORT_CHANGE event.',
    explanation:
      'The handshake makes each side wait for the other: the device announces ports only when the driver is ready for them, and describes a port only once the driver has built it. ' +
      'After PORT_READY the device sends CONSOLE_PORT for consoles, PORT_NAME for named ports (with a trailing NUL by default, as QEMU sends it; an option drops it) and PORT_OPEN 1 if the host side is connected. ' +
      'When the guest opens or closes a port it sends PORT_OPEN, and the monitor reports VSERPORT_CHANGE for ports that have an id. ' +
      'Without MULTIPORT there is no control queue, so port 0 counts as open at DRIVER_OK, and a reset or clearing DRIVER_OK disconnects every port. ' +
      'In the vring view control queues 2 (device to driver) and 3 (driver to device) take turns as the handshake proceeds.',
    source: `${QEMU_BUS} (handle_control_message)`,
    seeAlso: ['C6', 'C7', 'C3', 'Q3', 'M11'],
  },
  {
    id: 'D5',
    title: 'Guest-to-host push with backpressure',
    summary:
      'Guest-to-host data is pushed to the backend with backpressure: a port whose backend is full is throttled in the middle of an element, while consoles drop by default.',
    explanation:
      'When the chardev takes only part of a buffer, the device stops popping that port’s transmit queue, remembers how far into the element it got, and resumes when the backend drains. ' +
      'Without throttling the device would have to hold unbounded guest data in host memory or lose it, and since it is per port, one stuck reader never stalls the others. ' +
      "Consoles are QEMU's exception: Linux's hvc driver writes with a spinlock held, so throttling a console could stall the whole guest kernel, and QEMU drops the excess instead. " +
      "vmchan drops on consoles by default (consoleBackpressure 'drop'), offers throttling as an option, and shows every drop in the UI. " +
      "In the vring view a throttled port's last_avail_idx stops while avail.idx runs ahead, and the half-written head stays in flight.",
    source: `${QEMU_BUS} (do_flush_queued_data); QEMU hw/char/virtio-console.c (flush_buf)`,
    seeAlso: ['D6', 'D7', 'H1', 'L5'],
  },
  {
    id: 'D6',
    title: 'Host-to-guest pull',
    summary:
      'Host-to-guest data is pulled: the backend may deliver only as many bytes as the guest has posted receive buffers for.',
    explanation:
      'The device asks the chardev for data only when the guest has the port open and has receive buffers available, at most 4096 bytes per read as in QEMU. ' +
      'Free buffer space in the guest thus becomes flow control towards the host, so a fast host cannot overrun a slow guest. ' +
      'When the guest has the port closed nothing is read, and the data waits in the backend. ' +
      'Where QEMU would drop bytes that do not fit the posted buffers, vmchan keeps them in the port, so nothing disappears silently. ' +
      'In the vring view each delivery fills one receive buffer: used.idx advances and used len is the byte count copied.',
    source: `${QEMU_BUS} (virtio_serial_guest_ready, virtio_serial_write)`,
    seeAlso: ['D5', 'L9', 'L1', 'P8'],
  },
  {
    id: 'D7',
    title: 'No host: transmit dropped',
    summary:
      'Transmit buffers that arrive while no host is connected are returned with used len 0 and counted as dropped.',
    explanation:
      "QEMU discards guest data for a port with no host side rather than keep the guest's buffers, returning each element with length 0 so the guest can reuse it. " +
      'Keeping them would fill the transmit queue and block every writer until a host appeared. ' +
      'A host disconnect likewise discards pending transmit data and sends PORT_OPEN 0 so the guest knows. ' +
      'In the vring view used.idx advances on the transmit queue with len 0, and the capture marks the bytes as dropped.',
    source: `${QEMU_BUS} (handle_output, discard_vq_data)`,
    seeAlso: ['D5', 'C9', 'L5', 'H3'],
  },
  {
    id: 'D8',
    title: 'Hot-plug and hot-unplug',
    summary:
      'Hot-plug sends PORT_ADD and a configuration change; hot-unplug discards queued guest data, sends PORT_REMOVE and emits DEVICE_DELETED.',
    explanation:
      'A port added with device_add while the guest runs is announced like any other, so the driver creates its node without a reboot. ' +
      'On device_del the device first throws away data the guest queued for the port, since no host will read it, then tells the driver with PORT_REMOVE and the monitor with DEVICE_DELETED (Q3). ' +
      'Discarding first means no buffer of that port is still held by the device when the guest tears the port down. ' +
      'In the vring view look for PORT_ADD or PORT_REMOVE buffers used on control queue 2.',
    source: `${QEMU_BUS} (add_port, remove_port)`,
    seeAlso: ['C3', 'C4', 'L10', 'Q3', 'Q4'],
  },
  {
    id: 'D9',
    title: 'Malformed input stops one device',
    summary:
      'Malformed guest input puts that device into NEEDS_RESET with the broken rule named, while other devices keep running.',
    explanation:
      'A device model must never crash the emulator on guest input: in QEMU, virtio_error marks the device broken and sets NEEDS_RESET, and the rest of the VM carries on. ' +
      'Containing the failure means a buggy or hostile driver can at worst break its own device, not the host or its neighbours. ' +
      'vmchan records which rule was broken (an M rule, such as M10 or M12 for the serial-specific checks; M11 is only reported, D10), so the step view can link straight to its explanation. ' +
      "In the vring view the faulted device's rings freeze and its status shows NEEDS_RESET, while other devices' queues keep moving.",
    source: `${QEMU_VIRTIO} (virtio_error); ${QEMU_BUS}`,
    seeAlso: ['G3', 'M10', 'M11', 'M12', 'D10'],
  },
  {
    id: 'D10',
    title: 'Unusable control messages are ignored',
    summary:
      'A control message the device cannot act on (short, unknown port id, unknown event, READY 0) is reported and ignored, and the device keeps running.',
    explanation:
      "QEMU's handle_control_message prints a line with error_report, such as 'virtio-serial-bus: Unexpected port id 4 for device vser0.0', and returns; it never marks the device broken for these. " +
      'The everyday case is a hot-unplug racing a close: the guest closes the port and sends PORT_OPEN 0 before it has handled PORT_REMOVE, so the device sees an id it no longer has. ' +
      'Stopping the whole device there would take every other port down for a harmless race. ' +
      'In the vring view the message is popped from control queue 3 and used like any other, and the timeline shows the line QEMU would print.',
    source: `${QEMU_BUS} (handle_control_message); ${LINUX_CONSOLE} (unplug_port)`,
    seeAlso: ['M11', 'D8', 'L10'],
  },
  {
    id: 'D11',
    title: 'Controllers plug and unplug repeatedly',
    summary:
      'Several virtio-serial controllers can be hot-plugged, unplugged and plugged again, each unplug giving its guest memory back, within the RAM -m sets.',
    explanation:
      'Each controller costs the guest memory for its rings and the receive buffers of its ports, which a real guest frees when the device goes away. ' +
      'vmchan reserves what a controller can claim when it is plugged and returns every ring and buffer when it is unplugged, so a plug and unplug cycle can run forever. ' +
      "The guest's RAM is QEMU's default of 128 MiB, or what -m asks for, and never less than the devices given at start need. " +
      'A controller that does not fit is refused with the numbers, instead of failing later inside the guest.',
    source: `${QEMU_VIRTIO}; qemu(1) -m; ${LINUX_CONSOLE} (virtcons_remove)`,
    seeAlso: ['D8', 'D1'],
  },
]);

const LINUX = family('L', [
  {
    id: 'L1',
    title: 'Linux driver setup',
    summary:
      'Linux negotiates SIZE and MULTIPORT, fills receive queues with page-sized buffers and sends DEVICE_READY with id 0xFFFFFFFF.',
    explanation:
      'Linux accepts SIZE and MULTIPORT but not EMERG_WRITE, and reads max_nr_ports only with MULTIPORT, since the field means nothing otherwise. ' +
      'It posts one 4096-byte buffer per receive slot, so the device always has room and can deliver up to a page per buffer. ' +
      "DEVICE_READY carries the 'bad' id 0xFFFFFFFF because it concerns the device, not a port. " +
      'In the vring view control queue 2 and each new port’s receive queue fill up, one W descriptor of 4096 bytes per slot, and a DEVICE_READY appears on queue 3.',
    source: LINUX_CONSOLE,
    seeAlso: ['C6', 'D2', 'D6', 'M12'],
  },
  {
    id: 'L2',
    title: 'Guest device names',
    summary:
      'Port N of device D appears as vportDpN with its name in sysfs and a /dev/virtio-ports/NAME link, and a console port appears as hvcK.',
    explanation:
      'Names let guest programs find a channel by purpose rather than number: the QEMU guest agent opens /dev/virtio-ports/org.qemu.guest_agent.0 wherever its port landed. ' +
      'The kernel creates vportDpN and exposes the PORT_NAME text in /sys/class/virtio-ports/vportDpN/name, and a udev rule adds the symlink. ' +
      'Console ports go to the hvc layer instead and appear as hvcK terminals. ' +
      'This is guest-side bookkeeping: the only ring traffic behind it is PORT_ADD and PORT_NAME on control queue 2.',
    source: `${LINUX_CONSOLE}; udev rules for virtio-ports`,
    seeAlso: ['C7', 'D4', 'L3', 'L10'],
  },
  {
    id: 'L3',
    title: 'Exclusive open, PORT_OPEN messages',
    summary:
      'A serial port can be open only once at a time (EBUSY), a console vport refuses open (ENXIO), and open and close send PORT_OPEN 1 and 0.',
    explanation:
      'Exclusive open keeps two readers from splitting one byte stream between them unpredictably. ' +
      'A console port belongs to hvc, so opening its vport node would fight the terminal for the same data, and Linux returns ENXIO. ' +
      'PORT_OPEN on open and close tells the host whether anyone is listening, which the monitor reports as VSERPORT_CHANGE; close also discards unread data. ' +
      'In the vring view each open or close puts one PORT_OPEN message on control queue 3.',
    source: `${LINUX_CONSOLE} (port_fops_open, port_fops_release)`,
    seeAlso: ['C7', 'D4', 'L4', 'Q3'],
  },
  {
    id: 'L4',
    title: 'read: EOF, EAGAIN, ENODEV',
    summary:
      'read returns 0 when the host is gone and nothing is queued, EAGAIN when non-blocking with no data, and otherwise blocks; after unplug it fails with ENODEV.',
    explanation:
      'End of file on a host disconnect tells a guest program that the other side went away, just as with a pipe. ' +
      'Without it a blocking read would hang forever on a port whose host has left. ' +
      'ENODEV after hot-unplug separates a port that no longer exists from one that is merely idle. ' +
      'In the vring view, once a read has consumed a whole receive buffer the driver posts it again, so avail.idx on the receive queue moves.',
    source: `${LINUX_CONSOLE} (port_fops_read)`,
    seeAlso: ['L5', 'L6', 'L10', 'H3'],
  },
  {
    id: 'L5',
    title: 'write: blocking and 32 KiB',
    summary:
      'write blocks while the host is away or the queue is full, puts at most 32 KiB in one buffer, returns 0 for zero bytes and fails with ENODEV after unplug.',
    explanation:
      'Blocking while the host is disconnected (EAGAIN with O_NONBLOCK) stops a guest program from pouring data into a port nobody reads. ' +
      'The 32 KiB cap bounds the kernel buffer one write allocates, so larger writes come back short and the program loops. ' +
      'A zero-length write has nothing to send and returns at once without touching the ring. ' +
      'In the vring view each write is one transmit chain: avail.idx moves by one on the odd-numbered queue, and used.idx follows once the device has taken the bytes.',
    source: `${LINUX_CONSOLE} (port_fops_write)`,
    seeAlso: ['L4', 'L6', 'D5', 'D7'],
  },
  {
    id: 'L6',
    title: 'poll mask sequence',
    summary:
      'poll reports IN when a read would not block, OUT when a write would not block, HUP while the host is away, and HUP alone after unplug.',
    explanation:
      "The mask follows Linux's port_fops_poll, where a read does not block once the host is gone because it returns end of file. " +
      'So a port whose host is gone reads IN|HUP, as in Linux, where the conformance table lists plain HUP; vmchan follows Linux. ' +
      'The sequence is IN|HUP with the host absent, OUT once it connects, IN|OUT with data, IN|HUP when it closes with data pending, IN|HUP again once drained, and OUT on reconnect. ' +
      'Event loops rely on this to notice both data and hang-ups without extra calls. ' +
      "A poll moves nothing in the rings; its answer changes with PORT_OPEN messages on queue 2 and used buffers on the port's receive queue.",
    source: `${LINUX_CONSOLE} (port_fops_poll, will_read_block)`,
    seeAlso: ['L4', 'L5', 'L7', 'H3'],
  },
  {
    id: 'L7',
    title: 'SIGIO on port events',
    summary:
      'A process that asked for O_ASYNC gets SIGIO when data arrives, the host connects or disconnects, and the port is unplugged.',
    explanation:
      'SIGIO lets a program avoid polling: the kernel signals it whenever something it cares about changes. ' +
      'Linux sends it for the same events that change the poll mask, so a signal-driven program sees every transition an event loop would. ' +
      'Missing one, especially the unplug, would leave such a program waiting on a port that no longer exists. ' +
      'In the vring view each SIGIO lines up with a used receive buffer or a PORT_OPEN or PORT_REMOVE message on control queue 2.',
    source: `${LINUX_CONSOLE} (send_sigio_to_port)`,
    seeAlso: ['L6', 'L10'],
  },
  {
    id: 'L8',
    title: 'lseek fails with ESPIPE',
    summary: 'A virtio port is a stream, so lseek fails with ESPIPE.',
    explanation:
      'Like a pipe or a socket, a port has no position to move to: bytes arrive once and are consumed in order. ' +
      'Linux opens the port as non-seekable, so lseek fails with ESPIPE instead of pretending to rewind. ' +
      'No ring activity is involved.',
    source: `${LINUX_CONSOLE} (nonseekable_open)`,
    seeAlso: ['L4', 'L5'],
  },
  {
    id: 'L9',
    title: 'Data for closed ports dropped',
    summary: 'Data that arrives for a serial port the guest has not opened is discarded.',
    explanation:
      'Without a reader, received buffers would stay queued and the receive ring would fill, after which the device could deliver nothing more, not even to a program that opens the port later. ' +
      'Linux therefore discards such data and hands the buffers straight back to the device. ' +
      'A console port is always open from the driver’s point of view (C7), so this never applies to it, and since the device pulls only for open ports (D6) it mostly catches data already on its way at close. ' +
      'In the vring view used.idx advances on the receive queue and avail.idx follows at once as the buffer is posted again, but no read returns those bytes.',
    source: `${LINUX_CONSOLE} (in_intr, discard_port_data)`,
    seeAlso: ['D6', 'L3', 'C7'],
  },
  {
    id: 'L10',
    title: 'Hot-unplug cleanup in the guest',
    summary:
      'On PORT_REMOVE the driver wakes every waiter, clears both connected flags, sends SIGIO and removes the device nodes.',
    explanation:
      'A process blocked in read, write or poll must not sleep forever on a port that is gone; woken, it sees ENODEV or HUP. ' +
      'Clearing the guest and host connected flags makes every later call fail fast, SIGIO tells asynchronous owners, and removing vportDpN (and hvcK for a console) lets the names be reused. ' +
      "In the vring view the PORT_REMOVE arrives as a used buffer on control queue 2, and the port's queues stop moving.",
    source: `${LINUX_CONSOLE} (unplug_port)`,
    seeAlso: ['C4', 'D8', 'L4', 'L7'],
  },
  {
    id: 'L11',
    title: 'hvc0 to hvc7 always exist',
    summary:
      'Once the hvc tty driver is registered, /dev/hvc0 to /dev/hvc7 exist, and opening one with no console behind it fails with ENODEV.',
    explanation:
      'The hvc driver registers its tty driver with eight minors the first time a console is allocated, and the kernel creates a node for each of them at once. ' +
      'The node of an index with no console stays, and hvc_install refuses the open with ENODEV because no hvc_struct has that index. ' +
      'A program probing for a console therefore sees ENODEV, not ENOENT, and a console hot-plugged later reuses the existing node. ' +
      'No ring moves for this; it is what the guest namespace shows.',
    source: 'Linux drivers/tty/hvc/hvc_console.c (hvc_alloc, hvc_init, hvc_install)',
    seeAlso: ['L2', 'C7'],
  },
  {
    id: 'L12',
    title: 'A write waits for guest memory',
    summary:
      'A write that finds guest memory short waits until transmit buffers come back (EAGAIN with O_NONBLOCK); it never fails with ENOMEM.',
    explanation:
      'Each write copies its bytes into a freshly allocated buffer. Linux allocates it with GFP_KERNEL, which reclaims and retries rather than fail, so a program never sees ENOMEM from a busy port. ' +
      'vmchan does the same: used transmit buffers of every port are freed, and the writer sleeps until the device has used more of them; poll shows no POLLOUT meanwhile. ' +
      'Guest memory is sized so that every possible port can have a full transmit queue of 32 KiB writes in flight, so this happens only when memory is set small on purpose. ' +
      'In the vring view the writer waits while the transmit queues still hold used buffers to reclaim.',
    source: `${LINUX_CONSOLE} (alloc_buf, reclaim_consumed_buffers)`,
    seeAlso: ['L5', 'L6', 'D5'],
  },
]);

const HOST = family('H', [
  {
    id: 'H1',
    title: 'Chardev backends',
    summary:
      "A port's host side can be any of QEMU's chardev backends: socket, pipe, file, pty, null, ringbuf, udp, stdio, serial/tty and mux, with logfile on every one.",
    explanation:
      'A port only moves bytes and the chardev decides where they go, so one guest channel can be a unix socket for a tool, a file for logging, or a ring buffer read over QMP. ' +
      'vmchan implements the same backends with QEMU’s options (ringbuf size a power of two, 64 KiB by default; mux shares one backend among up to four frontends) so command lines carry over. ' +
      "A backend's readiness to take data drives backpressure (D5), and its connection state drives PORT_OPEN (H3). " +
      'In the vring view a backend that stops reading shows up as a throttled transmit queue.',
    source: 'QEMU chardev/ and qemu(1) -chardev',
    seeAlso: ['H2', 'H3', 'D5', 'Q2'],
  },
  {
    id: 'H2',
    title: 'QEMU option syntax',
    summary:
      "Options follow QEMU's syntax: comma-separated key=value, ',,' for a literal comma, on/off style booleans, and the legacy bare forms.",
    explanation:
      'People paste command lines from QEMU documentation and libvirt logs, so vmchan reads them the way QEMU does. ' +
      'A doubled comma stands for one comma inside a value, booleans accept on/off, yes/no and true/false, and legacy spellings such as bare server and nowait and the unix:PATH,server,nowait shorthand of -monitor and -qmp still work. ' +
      'Reading them differently would silently turn one option into another, which is worse than an error. ' +
      'This rule touches no ring; it decides which chardevs and ports exist.',
    source: 'qemu(1) option syntax; QEMU util/qemu-option.c',
    seeAlso: ['H1', 'H3', 'Q4'],
  },
  {
    id: 'H3',
    title: 'One client per server socket',
    summary:
      "A server socket with wait=off takes one client at a time, and the port's host side is connected exactly while that client is there.",
    explanation:
      'A port is a single byte stream, so QEMU lets one client own it and accepts no other until that one leaves. ' +
      'wait=off means the VM starts without waiting for a first client. ' +
      'Connecting and disconnecting are what the guest sees as PORT_OPEN 1 and 0, which drive end of file and HUP in the guest (L4, L6). ' +
      'In the vring view a client connecting makes the device deliver PORT_OPEN 1 on control queue 2, and pending host data starts to flow.',
    source: 'QEMU chardev/char-socket.c',
    seeAlso: ['H1', 'D4', 'D7', 'L6'],
  },
  {
    id: 'H4',
    title: 'Unread host bytes lost at hang-up',
    summary:
      'When the host hangs up a unix socket while the port is not taking its data, the bytes not yet read are discarded, counted and shown.',
    explanation:
      "QEMU's socket chardev reads from the socket only while the port can take data, but watches for a hang-up all the time. " +
      'When the host closes its end, the hang-up handler disconnects at once, and whatever is still unread in the socket is lost: the guest sees the host go and later reads end of file. ' +
      "vmchan discards the same bytes, counts them as a drop with the reason 'hangup-unread' and shows 'QEMU discarded N unread bytes when the host hung up'. " +
      'In the vring view the receive buffers the guest posted stay empty, and PORT_OPEN 0 goes out on control queue 2.',
    source: 'QEMU chardev/char-socket.c (tcp_chr_connect, tcp_chr_hup, tcp_chr_read_poll)',
    seeAlso: ['H3', 'D6', 'D7'],
  },
  {
    id: 'H5',
    title: 'Abstract unix sockets, tight or padded',
    summary:
      'abstract=on names a Linux abstract socket (no file on disk); tight=on, the default, uses only the name\u2019s own length as the address, tight=off pads it with NUL bytes to the full 108.',
    explanation:
      'An abstract socket lives in the kernel, not in the file system, so nothing is left behind and no file permission guards it: any process in the same network namespace can connect. ' +
      'The kernel compares the whole address, including its length, so a tight name and the same name padded are two different sockets: a client must use the same form as the server. ' +
      "QEMU's default is tight=on; the padded form exists for programs that always pass the whole sun_path. " +
      'vmchan makes both: Node pads by itself, and a short-lived helper hands over a tight socket; no byte of the channel passes through the helper.',
    source: 'QEMU util/qemu-sockets.c (unix_listen_saddr, unix_connect_saddr); Linux unix(7)',
    seeAlso: ['H1', 'H3'],
  },
  {
    id: 'H6',
    title: 'Descriptors passed in: fd=N and -add-fd',
    summary:
      'A chardev can use a descriptor its parent opened (socket,fd=N), and -add-fd puts descriptors into numbered sets that a file chardev opens as /dev/fdset/N.',
    explanation:
      'Management tools such as libvirt open files and sockets themselves, with their own permissions and labels, and hand QEMU only the descriptor, so QEMU never needs the right to open the path. ' +
      'A /dev/fdset/N path picks the member of set N whose access mode matches the open (a file chardev opens for writing), and the set is closed when nobody holds it any more and no monitor is connected. ' +
      'query-fdsets lists the sets and remove-fd takes members out. ' +
      'A running VM gets descriptors over its QMP socket instead: see H7.',
    source:
      'QEMU 7.2 monitor/misc.c (monitor_fdset_dup_fd_add, qmp_query_fdsets), softmmu/vl.c (parse_add_fd)',
    seeAlso: ['H1', 'H7', 'Q1'],
  },
  {
    id: 'H7',
    title: 'Descriptors passed over QMP: getfd, add-fd',
    summary:
      'A QMP client sends a descriptor along with a command (SCM_RIGHTS on the unix socket); getfd names it, chardev-add with a socket backend fd: NAME turns it into a chardev, add-fd puts it into an fd set.',
    explanation:
      'This is how libvirt hot-plugs a channel on a socket it opened itself: the descriptor travels as ancillary data with the bytes of the getfd command, the monitor keeps it under the name, and chardev-add takes it (the name is gone afterwards). ' +
      'A command sent without a descriptor gets "No file descriptor supplied via SCM_RIGHTS". ' +
      'closefd closes a name; names outlive a client\u2019s connection and are closed with the monitor. ' +
      'Node cannot receive ancillary data, so vmchan reads a monitor\u2019s socket through a small native part (build/fdpass.node, compiled by npm run build when a C compiler is there); without it getfd and add-fd are refused, saying so.',
    source:
      'QEMU 7.2 monitor/misc.c (qmp_getfd, qmp_closefd, monitor_get_fd, qmp_add_fd, monitor_fdset_add_fd), util/qemu-sockets.c (socket_get_fd), chardev/char-socket.c (tcp_chr_recv, tcp_get_msgfds)',
    seeAlso: ['H6', 'Q1'],
  },
]);

const MONITORS = family('Q', [
  {
    id: 'Q1',
    title: 'QMP greeting, errors, events',
    summary:
      'QMP greets with its version and capabilities, waits for qmp_capabilities, reports errors with a class and a desc, and stamps events with seconds and microseconds.',
    explanation:
      'QMP is the JSON protocol that management tools such as libvirt speak to QEMU, and matching its framing lets those tools and scripts talk to vmchan unchanged. ' +
      'The greeting and the qmp_capabilities handshake let client and server agree on optional protocol features before any command runs. ' +
      'Errors carry a class (usually GenericError) and a human-readable desc, and asynchronous events carry a timestamp so clients can order them. ' +
      'QMP moves no ring itself; it is how the outside world watches and changes the device.',
    source: 'QEMU docs/interop/qmp-spec',
    seeAlso: ['Q2', 'Q3', 'Q4'],
  },
  {
    id: 'Q2',
    title: 'QMP command set',
    summary:
      "vmchan answers the chardev, device, ringbuf and qom commands a virtio-serial user needs, plus QEMU 7.2's x-query-virtio introspection commands in the same JSON shapes.",
    explanation:
      'Supporting the real command names and reply shapes means scripts and tools written against QEMU work against vmchan. ' +
      'The x-query-virtio family (device status, queue status, queue element) exposes what the vring view shows: the last avail index, the used index, the shadow avail index, the signalled used index and the descriptors of an element. ' +
      "Keeping QEMU 7.2's shapes lets you compare vmchan's numbers with a real QEMU field by field. " +
      'The x- prefix marks these commands as unstable in QEMU, so vmchan pins one version’s shapes rather than guess.',
    source: 'QEMU qapi/char.json, qapi/qdev.json, qapi/virtio.json (7.2)',
    seeAlso: ['Q1', 'Q3', 'H1'],
  },
  {
    id: 'Q3',
    title: 'VSERPORT_CHANGE and DEVICE_DELETED events',
    summary:
      'VSERPORT_CHANGE reports a guest opening or closing a port, and DEVICE_DELETED reports that an unplug has finished.',
    explanation:
      'Host programs often need to know whether anyone listens in the guest: VSERPORT_CHANGE {id, open} follows every PORT_OPEN the driver sends (D4), for ports that have an id. ' +
      'DEVICE_DELETED {device, path} is the signal that a device_del is complete, so tools wait for it before reusing the id. ' +
      'In the vring view VSERPORT_CHANGE lines up with a PORT_OPEN popped from control queue 3, and DEVICE_DELETED with the PORT_REMOVE sent on queue 2.',
    source: `QEMU qapi/char.json (VSERPORT_CHANGE), qapi/qdev.json (DEVICE_DELETED); ${QEMU_BUS}`,
    seeAlso: ['D4', 'D8', 'L3', 'Q1'],
  },
  {
    id: 'Q4',
    title: 'HMP human monitor commands',
    summary:
      'The human monitor offers info chardev, info qtree, device_add, device_del, chardev-add, chardev-change, chardev-remove and help.',
    explanation:
      'HMP is the text console people type into, and its output is what tutorials and bug reports quote, so matching it makes those sources useful with vmchan. ' +
      'info qtree shows the virtio-serial bus with its ports, and info chardev lists each backend with its filename string. ' +
      'The hot-plug commands do the same as their QMP counterparts and lead to the same control messages (D8). ' +
      'Nothing here touches the rings directly.',
    source: 'QEMU hmp-commands.hx and hmp-commands-info.hx',
    seeAlso: ['Q2', 'D3', 'D8', 'H2'],
  },
  {
    id: 'Q5',
    title: 'VSERPORT_CHANGE is rate-limited',
    summary:
      'QMP sends at most one VSERPORT_CHANGE per port id per second, and a burst inside that second ends with one event carrying the latest state.',
    explanation:
      "QEMU's monitor throttles some events so a noisy guest cannot flood management tools: VSERPORT_CHANGE has a rate of one second, keyed by the port id. " +
      'The first change goes out at once and arms a timer; changes before it fires replace each other, and the latest is sent when it fires, which arms the timer again. ' +
      'Three quick open and close cycles therefore give two events: the first open, then the final close a second later. ' +
      "vmchan's QMP server does the same by default; vmchan run --qmp-events all sends every change for teaching, and the app's timeline always shows every change.",
    source: 'QEMU monitor/monitor.c (monitor_qapi_event_conf, monitor_qapi_event_queue_no_reenter)',
    seeAlso: ['Q3', 'D4'],
  },
  {
    id: 'Q6',
    title: 'chardev-change',
    summary:
      "chardev-change replaces a chardev's backend; QEMU 7.2 refuses it for a virtio-serial port's chardev, and vmchan answers the same by default.",
    explanation:
      'QEMU swaps a backend only under a frontend that registered a be_change handler (a 16550 serial port does); virtio-console registers none, so a port\'s chardev answers "Chardev user does not support chardev hotswap". ' +
      'A chardev nothing holds is removed and added again, so a failed add leaves the id gone; under a frontend that supports it, a new backend that fails to open leaves the old one working. ' +
      'vmchan run --qmp-chardev-change ports is a vmchan extra that swaps the backend under a running port as QEMU\'s unit test "hotswap" does: the old backend closes and the port carries on with the new one.',
    source:
      'QEMU chardev/char.c (qmp_chardev_change), hw/char/virtio-console.c, tests/unit/test-char.c',
    seeAlso: ['Q2', 'Q4', 'H1'],
  },
  {
    id: 'Q7',
    title: 'The guest agent protocol',
    summary:
      'qemu-ga reads one JSON request per line from its port and answers each with one compact JSON line; guest-sync-delimited puts a 0xFF byte before its answer.',
    explanation:
      'The agent has no session: a host that connects may find half a request left by the one before, so it starts with guest-sync (or guest-sync-delimited) and a random id, and throws away everything up to the answer with that id. ' +
      "The 0xFF byte can never appear in JSON text, so it marks where the answer starts; the host sends 0xFF too, to reset the agent's parser. " +
      "Every request goes through QEMU's QMP dispatcher, so a request that is not an object or lacks execute gets QMP's words, and an unknown command is CommandNotFound. " +
      "vmchan's simulated agent answers byte for byte as the real qemu-ga 7.2 for the commands it has; the tests compare both on the same pipe.",
    source: 'QEMU qga/main.c, qapi/qmp-dispatch.c, qga/commands.c (guest-sync, guest-info)',
    seeAlso: ['Q1', 'Q8', 'L6'],
  },
  {
    id: 'Q8',
    title: 'guest-file-* on a port',
    summary:
      "qemu-ga's guest-file-open, read, write and close work on /dev/virtio-ports/NAME, which is how a host reaches the guest side of a channel without logging in.",
    explanation:
      'Opening the port through the agent is a guest open: the host side sees the port go open, and closing it is a guest close (L6). ' +
      'A read asks for at most N bytes and fails with EAGAIN when the port has fewer queued, taking nothing, so a console reads in small steps. ' +
      'A port cannot seek, so a write right after a read fails until guest-file-flush, as with any stdio stream switching direction. ' +
      "vmchan's guest console is built on exactly these rules, so it works the same on the simulated agent and on a real guest's qemu-ga.",
    source:
      'QEMU qga/commands-posix.c (qmp_guest_file_open, qmp_guest_file_read, qmp_guest_file_write)',
    seeAlso: ['Q7', 'L6'],
  },
]);

const ALL: readonly RuleExplanation[] = [
  ...CONSOLE,
  ...GENERAL,
  ...SPLIT,
  ...PACKED,
  ...MALFORMED,
  ...DEVICE,
  ...LINUX,
  ...HOST,
  ...MONITORS,
];

/** Every rule of docs/CONFORMANCE.md, by id. Frozen: share it freely. */
export const RULES: Readonly<Record<string, RuleExplanation>> = Object.freeze(
  Object.fromEntries(
    ALL.map((r) => {
      Object.freeze(r.seeAlso);
      return [r.id, Object.freeze(r)];
    }),
  ),
);

/**
 * The explanation of a rule id as trace texts cite it ('S11', 'm3' and ' P4 '
 * work too), or undefined for an id the table does not have.
 */
export function explainRule(id: string): RuleExplanation | undefined {
  const key = id.trim().toUpperCase();
  return Object.hasOwn(RULES, key) ? RULES[key] : undefined;
}
