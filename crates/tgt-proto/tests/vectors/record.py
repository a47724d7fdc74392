#!/usr/bin/env python3
"""Records the exact request bytes `tgtadm` sends, one file per operation.

Usage (from this directory):  python3 record.py requests/

For every entry of CASES it listens on <tmp>/sock.9 (a Unix stream socket in a private
temp dir), runs `TGT_IPC_SOCKET=<tmp>/sock tgtadm -C 9 <args>`, reads the 120-byte header and
the `len - 120` payload bytes it announces, answers an 8-byte success reply (err 0, len 8) and
writes the request bytes to <out>/<name>.bin. Nothing but tgtadm and this script take part: no
tgtd runs. Every wait has a deadline (5 s).

The account password used below is a throwaway test value, not a secret.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

CASES = [
    ("show_targets", ["--lld", "iscsi", "--op", "show", "--mode", "target"]),
    ("show_portals", ["--lld", "iscsi", "--op", "show", "--mode", "portal"]),
    ("show_accounts", ["--lld", "iscsi", "--op", "show", "--mode", "account"]),
    ("show_system", ["--lld", "iscsi", "--op", "show", "--mode", "system"]),
    ("show_lld", ["--lld", "iscsi", "--op", "show", "--mode", "lld"]),
    ("new_portal", ["--lld", "iscsi", "--op", "new", "--mode", "portal", "--param", "portal=127.0.0.5:13265"]),
    ("new_portal_v6", ["--lld", "iscsi", "--op", "new", "--mode", "portal", "--param", "portal=[::1]:13265"]),
    ("delete_portal", ["--lld", "iscsi", "--op", "delete", "--mode", "portal", "--param", "portal=127.0.0.5:13265"]),
    ("new_target", ["--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", "1", "--targetname", "iqn.2026-12.test.vds:t1"]),
    ("delete_target", ["--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", "1"]),
    ("delete_target_force", ["--lld", "iscsi", "--op", "delete", "--force", "--mode", "target", "--tid", "1"]),
    ("target_state_offline", ["--lld", "iscsi", "--op", "update", "--mode", "target", "--tid", "1", "--name", "state", "--value", "offline"]),
    ("target_state_ready", ["--lld", "iscsi", "--op", "update", "--mode", "target", "--tid", "1", "--name", "state", "--value", "ready"]),
    ("bind_acl_all", ["--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "1", "--initiator-address", "ALL"]),
    ("bind_acl_cidr", ["--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "1", "--initiator-address", "10.0.0.0/8"]),
    ("bind_acl_name", ["--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "1", "--initiator-name", "iqn.2026-12.test.vds:init"]),
    ("unbind_acl_all", ["--lld", "iscsi", "--op", "unbind", "--mode", "target", "--tid", "1", "--initiator-address", "ALL"]),
    ("unbind_acl_name", ["--lld", "iscsi", "--op", "unbind", "--mode", "target", "--tid", "1", "--initiator-name", "iqn.2026-12.test.vds:init"]),
    ("new_account", ["--lld", "iscsi", "--op", "new", "--mode", "account", "--user", "user1", "--password", "pass1"]),
    ("delete_account", ["--lld", "iscsi", "--op", "delete", "--mode", "account", "--user", "user1"]),
    ("bind_account_in", ["--lld", "iscsi", "--op", "bind", "--mode", "account", "--tid", "1", "--user", "user1"]),
    ("bind_account_out", ["--lld", "iscsi", "--op", "bind", "--mode", "account", "--tid", "1", "--user", "user1", "--outgoing"]),
    ("bind_account_discovery", ["--lld", "iscsi", "--op", "bind", "--mode", "account", "--user", "user1"]),
    ("unbind_account_in", ["--lld", "iscsi", "--op", "unbind", "--mode", "account", "--tid", "1", "--user", "user1"]),
    ("unbind_account_out", ["--lld", "iscsi", "--op", "unbind", "--mode", "account", "--tid", "1", "--user", "user1", "--outgoing"]),
    ("unbind_account_discovery", ["--lld", "iscsi", "--op", "unbind", "--mode", "account", "--user", "user1"]),
    ("update_system_isns", ["--lld", "iscsi", "--op", "update", "--mode", "sys", "--name", "iSNSServerIP", "--value", "127.0.0.1"]),
    ("update_system_state", ["--lld", "iscsi", "--op", "update", "--mode", "sys", "--name", "State", "--value", "offline"]),
]

TIMEOUT = 5.0


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise RuntimeError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def record(tmp, name, args):
    path = os.path.join(tmp, "sock.9")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(TIMEOUT)
    result = {}

    def serve():
        try:
            conn, _ = srv.accept()
            conn.settimeout(TIMEOUT)
            hdr = read_exact(conn, 120)
            (length,) = struct.unpack_from("<I", hdr, 72)
            body = read_exact(conn, length - 120) if length > 120 else b""
            conn.sendall(struct.pack("<II", 0, 8))
            conn.close()
            result["bytes"] = hdr + body
        except Exception as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=serve)
    t.start()
    env = dict(os.environ, TGT_IPC_SOCKET=os.path.join(tmp, "sock"))
    proc = subprocess.run(["tgtadm", "-C", "9"] + args, env=env, capture_output=True, timeout=TIMEOUT)
    t.join(TIMEOUT)
    srv.close()
    os.unlink(path)
    if "bytes" not in result:
        raise RuntimeError(f"{name}: {result.get('error')} (tgtadm rc {proc.returncode}: {proc.stderr!r})")
    return result["bytes"], proc.returncode


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "requests"
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tgt-rec-", dir="/tmp") as tmp:
        for name, args in CASES:
            data, rc = record(tmp, name, args)
            with open(os.path.join(out, name + ".bin"), "wb") as f:
                f.write(data)
            with open(os.path.join(out, name + ".cmd"), "w") as f:
                f.write("tgtadm -C 9 " + " ".join(args) + "\n")
            print(f"{name}: {len(data)} bytes, tgtadm rc {rc}")


if __name__ == "__main__":
    main()
