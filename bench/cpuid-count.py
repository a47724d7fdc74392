# Counts the CPUID instructions a vds binary executes in one run, and who executes them.
#
# Under a hypervisor every CPUID is a VM exit (about 8 us each on the machine docs/PERFORMANCE.md
# was measured on), so a short command that asks the CPU for its features (Rust's
# is_x86_feature_detected!, used by memchr, httparse, rand's ChaCha, sha2's cpufeatures) pays
# for it on every run. Only the binary's own code is counted: the dynamic loader's and libc's
# CPUIDs are paid by every process alike. Needs gdb and objdump.
#
#   gdb -q -batch -x bench/cpuid-count.py --args target/release/vdsadm discover 127.0.0.1:3260
#
# prints one line per caller ("CPUID <count> <function>") and "TOTAL <count>".
import collections
import re
import subprocess

import gdb

binary = gdb.current_progspace().filename
offsets = []
disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary],
                             capture_output=True, text=True, check=True).stdout
for line in disassembly.splitlines():
    m = re.match(r"\s*([0-9a-f]+):\s+cpuid", line)
    if m:
        offsets.append(int(m.group(1), 16))

gdb.execute("starti", to_string=True)
base = None
for line in gdb.execute("info proc mappings", to_string=True).splitlines():
    fields = line.split()
    if len(fields) >= 5 and fields[-1] == binary:
        base = int(fields[0], 16)
        break
if base is None:
    raise gdb.GdbError(f"{binary} is not mapped")

callers = collections.Counter()


class AtCpuid(gdb.Breakpoint):
    def stop(self):
        frame, names = gdb.newest_frame(), []
        while frame is not None and len(names) < 12:
            names.append(frame.name() or "?")
            frame = frame.older()
        # The first frame that is not the detection machinery itself.
        skip = ("cpuid", "core_arch", "std_detect", "detect")
        callers[next((n for n in names if not any(s in n for s in skip)), names[-1])] += 1
        return False


for off in offsets:
    AtCpuid(f"*{base + off:#x}", internal=True)
gdb.execute("continue", to_string=True)
for name, n in callers.most_common():
    print("CPUID", n, name)
print("TOTAL", sum(callers.values()))
