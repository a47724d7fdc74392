#!/bin/sh
# Regenerates the *.bin vectors from the captures in ../shared/fixtures/peers.
# Each file is the concatenated TCP payload of one direction of one TCP stream:
#   <capture>-s<stream>-i2t.bin  initiator -> target
#   <capture>-s<stream>-t2i.bin  target -> initiator
set -eu
src=${1:-../../../../../shared/fixtures/peers}
for cap in sendtargets sendtargets-100targets-mrdsl512 chap-discovery istgt-sendtargets; do
  tshark -r "$src/$cap.pcap" -T fields -e tcp.stream -e tcp.dstport -e tcp.payload |
  /usr/bin/python3 -c '
import sys
cap = sys.argv[1]
out = {}
for line in sys.stdin:
    parts = line.rstrip("\n").split("\t")
    if len(parts) < 3 or not parts[2]:
        continue
    stream, dport, payload = parts
    d = "i2t" if dport in ("3260", "3262") else "t2i"
    out.setdefault((stream, d), bytearray()).extend(bytes.fromhex(payload))
for (stream, d), data in sorted(out.items()):
    open(f"{cap}-s{stream}-{d}.bin", "wb").write(data)
' "$cap"
done
