-- vmchan.lua: a Wireshark / tshark dissector for vmchan captures (virtio-serial
-- channels recorded by `vmchan capture` or the vmchan app).
--
-- Use it without installing anything:
--   tshark    -X lua_script:assets/wireshark/vmchan.lua -r capture.pcapng
--   wireshark -X lua_script:assets/wireshark/vmchan.lua -r capture.pcapng
-- or copy it into your personal Lua plugins folder
-- (Help > About Wireshark > Folders > Personal Lua Plugins).
--
-- The file format (see core/capture/pcapng-writer.ts): every interface has
-- link type 147 (LINKTYPE_USER0); the interface says what its packets are:
--   "<port name>" or "vportDpN"   description "device vser0, port 2, virtserialport, chardev ..."
--                                  raw channel bytes of one buffer
--   "vser0:control"                description "device vser0, control messages"
--                                  one virtio console control message (le32 id, le16 event,
--                                  le16 value, extra)
--   "vmchan:events"                description "vmchan events: ..."
--                                  12-byte event header, the text is the packet comment
-- Direction (epb_flags): the guest is the capturing side, so host-to-guest is
-- "inbound" (1) and guest-to-host "outbound" (2).
--
-- Filter fields: vmchan.kind (data, control, event, ring), vmchan.device, vmchan.port, vmchan.port_name,
-- vmchan.direction (h2g / g2h), vmchan.ctrl.id, vmchan.ctrl.event,
-- vmchan.ctrl.value, vmchan.ctrl.name, vmchan.ctrl.cols, vmchan.ctrl.rows,
-- vmchan.event.code, vmchan.event.value, vmchan.event.detail, vmchan.event.text,
-- vmchan.data, vmchan.data.text; decoded channel protocols: vmchan.proto, vmchan.qga.*
-- (command, type, id, return, error.class, error.desc, sync_delimiter), vmchan.vdagent.*,
-- vmchan.guestfs.*, vmchan.json.type, vmchan.text.line, vmchan.text.lines.
-- Written for the Lua 5.2 API of Wireshark 3.x and 4.x.

local vmchan = Proto("vmchan", "vmchan virtio-serial channel")

local CONTROL_EVENTS = {
  [0] = "DEVICE_READY",
  [1] = "PORT_ADD",
  [2] = "PORT_REMOVE",
  [3] = "PORT_READY",
  [4] = "CONSOLE_PORT",
  [5] = "RESIZE",
  [6] = "PORT_OPEN",
  [7] = "PORT_NAME",
}

-- Keep in step with EVENT_CODE / RING_EVENT_CODE in core/capture/record.ts.
local EVENT_CODES = {
  [1] = "port-added",
  [2] = "port-removed",
  [3] = "guest-open",
  [4] = "guest-close",
  [5] = "host-open",
  [6] = "host-close",
  [7] = "throttle-on",
  [8] = "throttle-off",
  [9] = "drop",
  [10] = "needs-reset",
  [11] = "note",
  [64] = "ring",
}

local DIRECTIONS = { [1] = "h2g", [2] = "g2h" }
local DIRECTION_TEXT = { [1] = "host-to-guest", [2] = "guest-to-host" }
local ARROWS = { [1] = "H→G", [2] = "G→H" }

local pf = {
  kind = ProtoField.string("vmchan.kind", "Kind"),
  device = ProtoField.string("vmchan.device", "Device"),
  port = ProtoField.uint32("vmchan.port", "Port number", base.DEC),
  port_name = ProtoField.string("vmchan.port_name", "Port"),
  port_kind = ProtoField.string("vmchan.port_kind", "Port type"),
  direction = ProtoField.string("vmchan.direction", "Direction"),
  ctrl_id = ProtoField.uint32("vmchan.ctrl.id", "Id (port)", base.DEC),
  ctrl_event = ProtoField.uint16("vmchan.ctrl.event", "Event", base.DEC, CONTROL_EVENTS),
  ctrl_value = ProtoField.uint16("vmchan.ctrl.value", "Value", base.DEC),
  ctrl_name = ProtoField.string("vmchan.ctrl.name", "Port name"),
  ctrl_cols = ProtoField.uint16("vmchan.ctrl.cols", "Columns", base.DEC),
  ctrl_rows = ProtoField.uint16("vmchan.ctrl.rows", "Rows", base.DEC),
  ctrl_extra = ProtoField.bytes("vmchan.ctrl.extra", "Extra bytes"),
  ev_version = ProtoField.uint8("vmchan.event.version", "Payload version", base.DEC),
  ev_code = ProtoField.uint8("vmchan.event.code", "Event", base.DEC, EVENT_CODES),
  ev_port = ProtoField.uint16("vmchan.event.port", "Port number", base.DEC),
  ev_iface = ProtoField.uint32("vmchan.event.interface", "Interface of the port", base.DEC),
  ev_value = ProtoField.uint32("vmchan.event.value", "Value (bytes dropped / queue)", base.DEC),
  ev_detail = ProtoField.string("vmchan.event.detail", "Detail (rule / ring op)"),
  ev_text = ProtoField.string("vmchan.event.text", "Text"),
  data = ProtoField.bytes("vmchan.data", "Data"),
  data_text = ProtoField.string("vmchan.data.text", "Text"),
  -- Decoded channel protocols (core/capture/protocols.ts has the same fields and labels).
  proto = ProtoField.string("vmchan.proto", "Channel protocol"),
  qga_sync = ProtoField.bool("vmchan.qga.sync_delimiter", "Sync delimiter (0xFF)"),
  qga_type = ProtoField.string("vmchan.qga.type", "Message"),
  qga_command = ProtoField.string("vmchan.qga.command", "Command"),
  qga_id = ProtoField.int64("vmchan.qga.id", "Sync id", base.DEC),
  qga_return = ProtoField.int64("vmchan.qga.return", "Return value", base.DEC),
  qga_error_class = ProtoField.string("vmchan.qga.error.class", "Error class"),
  qga_error_desc = ProtoField.string("vmchan.qga.error.desc", "Error description"),
  vda_chunk_port = ProtoField.uint32("vmchan.vdagent.chunk.port", "Chunk port", base.DEC),
  vda_chunk_size = ProtoField.uint32("vmchan.vdagent.chunk.size", "Chunk size", base.DEC),
  vda_protocol = ProtoField.uint32("vmchan.vdagent.protocol", "Protocol", base.DEC),
  vda_type = ProtoField.string("vmchan.vdagent.type", "Message type"),
  vda_size = ProtoField.uint32("vmchan.vdagent.size", "Message size", base.DEC),
  gfs_flag = ProtoField.string("vmchan.guestfs.flag", "Flag"),
  gfs_length = ProtoField.uint32("vmchan.guestfs.length", "Message length", base.DEC),
  gfs_program = ProtoField.uint32("vmchan.guestfs.program", "Program", base.DEC),
  gfs_version = ProtoField.uint32("vmchan.guestfs.version", "Version", base.DEC),
  gfs_proc = ProtoField.uint32("vmchan.guestfs.proc", "Procedure", base.DEC),
  gfs_direction = ProtoField.string("vmchan.guestfs.direction", "Direction"),
  gfs_serial = ProtoField.uint32("vmchan.guestfs.serial", "Serial", base.DEC),
  gfs_status = ProtoField.uint32("vmchan.guestfs.status", "Status", base.DEC),
  json_type = ProtoField.string("vmchan.json.type", "JSON value"),
  text_line = ProtoField.string("vmchan.text.line", "First line"),
  text_lines = ProtoField.uint32("vmchan.text.lines", "Lines", base.DEC),
}
vmchan.fields = {
  pf.kind, pf.device, pf.port, pf.port_name, pf.port_kind, pf.direction,
  pf.ctrl_id, pf.ctrl_event, pf.ctrl_value, pf.ctrl_name, pf.ctrl_cols, pf.ctrl_rows, pf.ctrl_extra,
  pf.ev_version, pf.ev_code, pf.ev_port, pf.ev_iface, pf.ev_value, pf.ev_detail, pf.ev_text,
  pf.data, pf.data_text,
  pf.proto, pf.qga_sync, pf.qga_type, pf.qga_command, pf.qga_id, pf.qga_return,
  pf.qga_error_class, pf.qga_error_desc,
  pf.vda_chunk_port, pf.vda_chunk_size, pf.vda_protocol, pf.vda_type, pf.vda_size,
  pf.gfs_flag, pf.gfs_length, pf.gfs_program, pf.gfs_version, pf.gfs_proc, pf.gfs_direction,
  pf.gfs_serial, pf.gfs_status, pf.json_type, pf.text_line, pf.text_lines,
}

local ef_short = ProtoExpert.new("vmchan.ctrl.short", "Control message shorter than its header",
  expert.group.MALFORMED, expert.severity.ERROR)
vmchan.experts = { ef_short }

vmchan.prefs.resize_order = Pref.enum("RESIZE field order", 2,
  "Order of the two le16 after a RESIZE header (the spec says cols, rows; Linux reads rows, cols)",
  { { 1, "cols, rows (virtio spec)", 1 }, { 2, "rows, cols (Linux, v86)", 2 } },
  false)

local fe_ifname = Field.new("frame.interface_name")
local fe_ifdesc = Field.new("frame.interface_description")
local fe_dir = Field.new("frame.packet_flags_direction")
local fe_comment = Field.new("frame.comment")

-- (device .. "/" .. port) -> port name, learnt from port interfaces and PORT_NAME.
local port_names = {}

local function field_value(extractor)
  local fi = extractor()
  if fi == nil then return nil end
  return fi.value
end

-- What this interface carries: "data", "control" or "event", and for which device/port.
local function classify(name, desc)
  if desc ~= nil then
    local dev = desc:match("^device (%S+), control messages")
    if dev then return "control", dev end
    local d, p, k = desc:match("^device (%S+), port (%d+), (%a+)")
    if d then return "data", d, tonumber(p), k end
    if desc:match("^vmchan events") then return "event" end
  end
  if name ~= nil then
    if name == "vmchan:events" then return "event" end
    local dev = name:match("^(.+):control$")
    if dev then return "control", dev end
  end
  return "data"
end

local function printable(tvb, max)
  local n = tvb:len()
  if n > max then n = max end
  local bytes = tvb:range(0, n):bytes()
  local out = {}
  for i = 0, n - 1 do
    local b = bytes:get_index(i)
    if b >= 32 and b < 127 then out[#out + 1] = string.char(b) else out[#out + 1] = "." end
  end
  local s = table.concat(out)
  if tvb:len() > max then s = s .. "…" end
  return s
end

local function dissect_control(tvb, pinfo, tree, device)
  local len = tvb:len()
  if len < 8 then
    tree:add_proto_expert_info(ef_short)
    return "malformed control message (" .. len .. " bytes)"
  end
  local id = tvb:range(0, 4):le_uint()
  local event = tvb:range(4, 2):le_uint()
  local value = tvb:range(6, 2):le_uint()
  local id_item = tree:add_le(pf.ctrl_id, tvb:range(0, 4))
  if id == 0xffffffff then id_item:append_text(" (no port)") end
  tree:add_le(pf.ctrl_event, tvb:range(4, 2))
  tree:add_le(pf.ctrl_value, tvb:range(6, 2))
  local name = CONTROL_EVENTS[event] or ("EVENT_" .. event)
  local id_text = (id == 0xffffffff) and "0xffffffff" or tostring(id)
  if id ~= 0xffffffff then
    tree:add(pf.port, id):set_generated()
    local pname = port_names[device .. "/" .. id]
    if pname then tree:add(pf.port_name, pname):set_generated() end
  end
  if event == 5 and len >= 12 then
    local a, b = tvb:range(8, 2), tvb:range(10, 2)
    local cols, rows = a, b
    if vmchan.prefs.resize_order == 2 then cols, rows = b, a end
    tree:add_le(pf.ctrl_cols, cols)
    tree:add_le(pf.ctrl_rows, rows)
    return string.format("%s id=%s cols=%d rows=%d", name, id_text, cols:le_uint(), rows:le_uint())
  elseif event == 7 then
    local n = len - 8
    if n > 0 and tvb:range(len - 1, 1):uint() == 0 then n = n - 1 end
    local pname = ""
    if n > 0 then pname = tvb:range(8, n):string(ENC_UTF_8) end
    if len > 8 then tree:add(pf.ctrl_name, tvb:range(8, len - 8), pname) end
    port_names[device .. "/" .. id] = pname
    return string.format('%s id=%s name="%s"', name, id_text, pname)
  elseif len > 8 then
    tree:add(pf.ctrl_extra, tvb:range(8, len - 8))
  end
  return string.format("%s id=%s value=%d", name, id_text, value)
end

local function dissect_event(tvb, tree, comment)
  local len = tvb:len()
  if len >= 12 then
    tree:add(pf.ev_version, tvb:range(0, 1))
    tree:add(pf.ev_code, tvb:range(1, 1))
    local port = tvb:range(2, 2):le_uint()
    local pitem = tree:add_le(pf.ev_port, tvb:range(2, 2))
    if port == 0xffff then pitem:append_text(" (device-wide)") end
    tree:add_le(pf.ev_iface, tvb:range(4, 4))
    tree:add_le(pf.ev_value, tvb:range(8, 4))
    if len > 12 then tree:add(pf.ev_detail, tvb:range(12, len - 12), tvb:range(12, len - 12):string(ENC_UTF_8)) end
  end
  if comment ~= nil then tree:add(pf.ev_text, comment):set_generated() end
  if comment ~= nil then return comment end
  if len >= 2 then return EVENT_CODES[tvb:range(1, 1):uint()] or "event" end
  return "event"
end

-- Port name -> channel protocol. Extend it from your own Lua script, e.g.
--   vmchan_port_protocols["my.port"] = "json"
-- (keep in step with core/capture/protocols.ts).
vmchan_port_protocols = vmchan_port_protocols or {}
local PORT_PROTOCOLS = vmchan_port_protocols
PORT_PROTOCOLS["org.qemu.guest_agent.0"] = PORT_PROTOCOLS["org.qemu.guest_agent.0"] or "qga"
PORT_PROTOCOLS["com.redhat.spice.0"] = PORT_PROTOCOLS["com.redhat.spice.0"] or "vdagent"
PORT_PROTOCOLS["org.libguestfs.channel.0"] = PORT_PROTOCOLS["org.libguestfs.channel.0"] or "guestfs"

local TITLES = {
  qga = "QEMU Guest Agent", vdagent = "SPICE vdagent", guestfs = "libguestfs channel",
  json = "JSON lines", text = "Text lines",
}
local VDAGENT_TYPES = {
  [1] = "MOUSE_STATE", [2] = "MONITORS_CONFIG", [3] = "REPLY", [4] = "CLIPBOARD",
  [5] = "DISPLAY_CONFIG", [6] = "ANNOUNCE_CAPABILITIES", [7] = "CLIPBOARD_GRAB",
  [8] = "CLIPBOARD_REQUEST", [9] = "CLIPBOARD_RELEASE", [10] = "FILE_XFER_START",
  [11] = "FILE_XFER_STATUS", [12] = "FILE_XFER_DATA", [13] = "CLIENT_DISCONNECTED",
  [14] = "MAX_CLIPBOARD", [15] = "AUDIO_VOLUME_SYNC", [16] = "GRAPHICS_DEVICE_INFO",
}

local function raw_string(tvb)
  if tvb:len() == 0 then return "" end
  return tvb:range(0, tvb:len()):raw()
end

local function looks_like_text(s)
  return #s > 0 and not s:find("[%z\1-\8\11\12\14-\31]")
end

-- The first line that is a whole JSON object (as far as patterns can tell).
local function first_json_object(s)
  local t = s:gsub("^%s+", ""):gsub("%s+$", "")
  if t:sub(1, 1) == "{" and t:sub(-1) == "}" and not t:find("\n") then return t end
  for line in (t .. "\n"):gmatch("([^\n]*)\n") do
    local l = line:gsub("^%s+", ""):gsub("%s+$", "")
    if l:sub(1, 1) == "{" and l:sub(-1) == "}" then return l end
  end
  return nil
end

local function decode_qga(tvb, tree)
  local s = raw_string(tvb)
  local sync = s:find("\255", 1, true) ~= nil
  local t = tree:add(vmchan, tvb(), TITLES.qga)
  if sync then t:add(pf.qga_sync, true) end
  local msg = first_json_object((s:gsub("\255", "")))
  local summary = sync and "0xFF sync delimiter" or "qemu-ga (partial message)"
  if msg ~= nil then
    local exec = msg:match('"execute"%s*:%s*"([^"]*)"') or msg:match('"exec"%s*:%s*"([^"]*)"')
    if exec then
      t:add(pf.qga_type, "command")
      t:add(pf.qga_command, exec)
      local id = msg:match('"arguments"%s*:%s*{[^}]-"id"%s*:%s*(%-?%d+)%s*[,}]')
      if id then t:add(pf.qga_id, Int64.new(tonumber(id))) end
      summary = "command " .. exec
    elseif msg:find('"return"%s*:') then
      t:add(pf.qga_type, "return")
      local ret = msg:match('"return"%s*:%s*(%-?%d+)%s*}')
      if ret then t:add(pf.qga_return, Int64.new(tonumber(ret))) end
      summary = "return " .. (msg:match('"return"%s*:%s*(.-)%s*}$') or "")
    elseif msg:find('"error"%s*:') then
      t:add(pf.qga_type, "error")
      local class = msg:match('"class"%s*:%s*"([^"]*)"')
      local desc = msg:match('"desc"%s*:%s*"([^"]*)"')
      if class then t:add(pf.qga_error_class, class) end
      if desc then t:add(pf.qga_error_desc, desc) end
      summary = "error " .. (class or "") .. ": " .. (desc or "")
    end
    if sync then summary = "0xFF " .. summary end
  end
  return summary
end

local function decode_vdagent(tvb, tree)
  local t = tree:add(vmchan, tvb(), TITLES.vdagent)
  local summary = "vdagent (short chunk)"
  if tvb:len() >= 8 then
    t:add_le(pf.vda_chunk_port, tvb:range(0, 4))
    t:add_le(pf.vda_chunk_size, tvb:range(4, 4))
    summary = "vdagent chunk (continued message)"
  end
  if tvb:len() >= 28 then
    local ty = tvb:range(12, 4):le_uint()
    local name = VDAGENT_TYPES[ty] or ("TYPE_" .. ty)
    t:add_le(pf.vda_protocol, tvb:range(8, 4))
    t:add(pf.vda_type, tvb:range(12, 4), name)
    t:add_le(pf.vda_size, tvb:range(24, 4))
    summary = name .. " (" .. tvb:range(24, 4):le_uint() .. " bytes)"
  end
  return summary
end

local function decode_guestfs(tvb, tree)
  local t = tree:add(vmchan, tvb(), TITLES.guestfs)
  local summary = "guestfs (continued message)"
  if tvb:len() >= 4 then
    local word = tvb:range(0, 4):uint()
    if word == 0xf5f55ff5 or word == 0xffffeeee then
      local flag = (word == 0xf5f55ff5) and "LAUNCH" or "CANCEL"
      t:add(pf.gfs_flag, tvb:range(0, 4), flag)
      summary = flag .. " flag"
    else
      t:add(pf.gfs_length, tvb:range(0, 4))
      if tvb:len() >= 28 then
        local dir = (tvb:range(16, 4):uint() == 0) and "call" or "reply"
        t:add(pf.gfs_program, tvb:range(4, 4))
        t:add(pf.gfs_version, tvb:range(8, 4))
        t:add(pf.gfs_proc, tvb:range(12, 4))
        t:add(pf.gfs_direction, tvb:range(16, 4), dir)
        t:add(pf.gfs_serial, tvb:range(20, 4))
        t:add(pf.gfs_status, tvb:range(24, 4))
        summary = dir .. " proc " .. tvb:range(12, 4):uint() .. " serial " .. tvb:range(20, 4):uint()
      end
    end
  end
  return summary
end

local function decode_guess(tvb, tree, forced)
  local s = raw_string(tvb)
  if not looks_like_text(s) then return nil end
  local trimmed = s:gsub("^%s+", "")
  local first = trimmed:sub(1, 1)
  if forced ~= "text" and (first == "{" or first == "[") then
    local line = (trimmed:match("^([^\n]*)") or ""):gsub("%s+$", "")
    local last = line:sub(-1)
    if (first == "{" and last == "}") or (first == "[" and last == "]") then
      local t = tree:add(vmchan, tvb(), TITLES.json)
      t:add(pf.json_type, first == "[" and "array" or "object")
      return line, "json"
    end
  end
  local lines = {}
  for l in (s .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  if #lines > 1 and lines[#lines] == "" then lines[#lines] = nil end
  local line1 = (lines[1] or ""):gsub("\r$", "")
  local t = tree:add(vmchan, tvb(), TITLES.text)
  t:add(pf.text_line, line1)
  t:add(pf.text_lines, #lines)
  return line1, "text"
end

-- Decode a data record's payload by the port's protocol; returns the Info summary of a
-- port with a protocol of its own, or nil.
local function decode_payload(tvb, tree, port_name)
  if tvb:len() == 0 then return nil end
  local p = port_name and PORT_PROTOCOLS[port_name]
  if p == "qga" then
    tree:add(pf.proto, "qga"):set_generated()
    return decode_qga(tvb, tree)
  elseif p == "vdagent" then
    tree:add(pf.proto, "vdagent"):set_generated()
    return decode_vdagent(tvb, tree)
  elseif p == "guestfs" then
    tree:add(pf.proto, "guestfs"):set_generated()
    return decode_guestfs(tvb, tree)
  end
  -- Guessed text and JSON keep the byte count and text in the Info column.
  local _, guessed = decode_guess(tvb, tree, p)
  if guessed then tree:add(pf.proto, guessed):set_generated() end
  return nil
end

function vmchan.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "VMCHAN"
  local ifname = field_value(fe_ifname)
  local ifdesc = field_value(fe_ifdesc)
  local dir = field_value(fe_dir) or 0
  local kind, device, port, port_kind = classify(ifname, ifdesc)

  if kind == "event" and tvb:len() >= 2 and tvb:range(1, 1):uint() == 64 then kind = "ring" end
  local subtree = tree:add(vmchan, tvb(), "vmchan " .. kind)
  subtree:add(pf.kind, kind):set_generated()
  if device then subtree:add(pf.device, device):set_generated() end
  if DIRECTIONS[dir] then
    subtree:add(pf.direction, DIRECTIONS[dir]):append_text(" (" .. DIRECTION_TEXT[dir] .. ")")
    if dir == 1 then
      pinfo.cols.src = "host"
      pinfo.cols.dst = "guest"
    else
      pinfo.cols.src = "guest"
      pinfo.cols.dst = "host"
    end
  end

  local info
  if kind == "control" then
    info = (device or "?") .. " " .. (ARROWS[dir] or "") .. " " .. dissect_control(tvb, pinfo, subtree, device or "?")
  elseif kind == "event" or kind == "ring" then
    local comment = field_value(fe_comment)
    info = dissect_event(tvb, subtree, comment)
  else
    if port ~= nil then
      subtree:add(pf.port, port):set_generated()
      if port_kind then subtree:add(pf.port_kind, port_kind):set_generated() end
      if ifname then port_names[device .. "/" .. port] = ifname end
    end
    if ifname then subtree:add(pf.port_name, ifname):set_generated() end
    if tvb:len() > 0 then
      subtree:add(pf.data, tvb())
      subtree:add(pf.data_text, tvb(), printable(tvb, 256)):set_generated()
    end
    info = string.format("%s %s %d bytes %s", ifname or "data", ARROWS[dir] or "", tvb:len(), printable(tvb, 40))
    local decoded = decode_payload(tvb, tree, ifname)
    if decoded then info = string.format("%s %s %s", ifname or "data", ARROWS[dir] or "", decoded) end
  end
  pinfo.cols.info = info
  return tvb:len()
end

-- Link type 147 (LINKTYPE_USER0) is Wireshark's encapsulation USER0. Older
-- releases call the table `wtap`, newer ones `wtap_encaps`.
local encaps = wtap_encaps or wtap
DissectorTable.get("wtap_encap"):add(encaps.USER0, vmchan)
