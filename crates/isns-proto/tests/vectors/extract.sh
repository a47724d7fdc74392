#!/bin/sh
# Regenerates the *.bin vectors from iSNS captures. Each file is the concatenated TCP payload of
# one direction of one TCP stream, named by who sent it:
#   <capture>-s<stream>-client.bin  the iSNS client's bytes
#   <capture>-s<stream>-server.bin  isnsd's bytes
# Captures:
#   isns.pcap (../shared/fixtures/peers): tgtd 1.0.85 registering with isnsd 0.101 on port 3205
#     (DevDereg, DevAttrReg[REPLACE], SCNReg, DevAttrQry) and isnsadm queries.
#   isnsd-scn.pcap (this directory): taken on a Debian 12 VM with `tshark -i lo` while a raw
#     client registered a Control node iqn.x:ctl2 with SCN port 23998 at isnsd 0.101 on port
#     23205 (DevAttrReg, SCNReg bitmap 0x3f), then `isnsadm --register` added target
#     iqn.2024-01.test:new9: isnsd connected to port 23998, sent the SCN and got the response.
#     Stream 0 is the Control node's registration, stream 1 isnsadm's, stream 2 the SCN connection.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../../../../shared/fixtures/peers}
extract() {
  cap=$1 name=$2
  tshark -r "$cap" -T fields -e tcp.stream -e tcp.srcport -e tcp.dstport -e tcp.payload 2>/dev/null |
  /usr/bin/python3 -c '
import sys
name, out = sys.argv[1], {}
for line in sys.stdin:
    parts = line.rstrip("\n").split("\t")
    if len(parts) < 4 or not parts[3]:
        continue
    stream, sport, dport, payload = parts
    # isnsd listens on 3205/23205; the SCN listener of the Control node is 23998.
    from_server = sport in ("3205", "23205") or dport == "23998"
    d = "server" if from_server else "client"
    out.setdefault((int(stream), d), bytearray()).extend(bytes.fromhex(payload))
for (stream, d), data in sorted(out.items()):
    open(f"{name}-s{stream}-{d}.bin", "wb").write(data)
' "$name"
}
cd "$here"
extract "$src/isns.pcap" isns
extract "$here/isnsd-scn.pcap" isnsd-scn
