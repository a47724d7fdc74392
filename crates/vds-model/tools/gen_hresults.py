#!/usr/bin/env python3
"""Generates src/hresult/table.rs from ../shared/reference/vds-hresults.txt.

Run from the repository root: python3 crates/vds-model/tools/gen_hresults.py
The Rust table it writes is the single source of truth at run time; the
`table_matches_reference` test checks it against the reference file.
"""
import pathlib, re

ROOT = pathlib.Path(__file__).resolve().parents[3]
REF = ROOT.parent / "shared" / "reference" / "vds-hresults.txt"
OUT = ROOT / "crates" / "vds-model" / "src" / "hresult" / "table.rs"

# One-line descriptions of the codes a hardware/iSCSI provider meets, restated
# from the VDS common return codes; the rest get a description made from the name.
DESC = {
    "VDS_E_NOT_SUPPORTED": "The object does not support the operation.",
    "VDS_E_INITIALIZED_FAILED": "VDS or the provider failed to initialize.",
    "VDS_E_INITIALIZE_NOT_CALLED": "The hardware provider was used before it was initialized.",
    "VDS_E_ALREADY_REGISTERED": "The provider is already registered.",
    "VDS_E_ANOTHER_CALL_IN_PROGRESS": "Another operation is in progress on this object; it cannot proceed until that one completes.",
    "VDS_E_OBJECT_NOT_FOUND": "The object was not found.",
    "VDS_E_OPERATION_PENDING": "The operation is still in progress.",
    "VDS_E_OBJECT_DELETED": "The object no longer exists.",
    "VDS_E_CANCEL_TOO_LATE": "The operation can no longer be canceled.",
    "VDS_E_OPERATION_CANCELED": "The operation was canceled.",
    "VDS_E_BAD_COOKIE": "The advise cookie was not found.",
    "VDS_E_PROVIDER_INITIALIZATION_FAILED": "The provider failed to initialize.",
    "VDS_E_OBJECT_EXISTS": "The object already exists.",
    "VDS_E_PROVIDER_CACHE_CORRUPT": "The provider's cache is corrupt; run Reenumerate and then Refresh to rebuild it.",
    "VDS_S_PROVIDER_ERROR_LOADING_CACHE": "The provider met errors while loading its cache.",
    "VDS_E_ACCESS_DENIED": "Access is denied; the caller must be an administrator.",
    "VDS_E_OBJECT_STATUS_FAILED": "The object (or the device behind it) is in a failed state and cannot perform the operation.",
    "VDS_E_BAD_PROVIDER_DATA": "The provider returned bad data.",
    "VDS_E_PROVIDER_FAILURE": "The provider failed.",
    "VDS_E_INTERNAL_ERROR": "An internal error occurred in VDS.",
    "VDS_E_OBJECT_OUT_OF_SYNC": "The object reference may be stale.",
    "VDS_E_TIMEOUT": "The operation timed out.",
    "VDS_E_RETRY": "The operation failed; retry it.",
    "VDS_E_PROVIDER_EXITING": "The provider is exiting.",
    "VDS_E_PROVIDER_INTERNAL_ERROR": "The provider met an internal error.",
    "VDS_E_UNRECOVERABLE_PROVIDER_ERROR": "The provider met an unrecoverable error.",
    "VDS_S_NAME_TRUNCATED": "The name was set but truncated.",
    "VDS_E_NAME_NOT_UNIQUE": "The name is not unique.",
    "VDS_S_STATUSES_INCOMPLETELY_SET": "Some of the statuses were not set.",
    "VDS_E_ADDRESSES_INCOMPLETELY_SET": "Some of the addresses were not set.",
    "VDS_E_SECURITY_INCOMPLETELY_SET": "Some of the security settings were not set.",
    "VDS_E_TARGET_SPECIFIC_NOT_SUPPORTED": "The initiator service cannot hold per-target secrets.",
    "VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED": "The target cannot hold per-initiator secrets.",
    "VDS_E_ISCSI_LOGIN_FAILED": "The iSCSI login failed.",
    "VDS_E_ISCSI_LOGOUT_FAILED": "The iSCSI logout failed.",
    "VDS_E_ISCSI_SESSION_NOT_FOUND": "The iSCSI session was not found.",
    "VDS_E_ASSOCIATED_LUNS_EXIST": "The target still has associated LUNs.",
    "VDS_E_ASSOCIATED_PORTALS_EXIST": "The portal group still has portals.",
    "VDS_E_NO_DISCOVERY_DOMAIN": "No iSNS discovery domain was found.",
    "VDS_E_MULTIPLE_DISCOVERY_DOMAINS": "More than one iSNS discovery domain was found.",
    "VDS_E_ISCSI_LOGOUT_INCOMPLETE": "The iSCSI logout did not complete.",
    "VDS_E_PROVIDER_CACHE_OUTOFSYNC": "The provider cache is out of step with the driver cache.",
    "VDS_E_NO_IMPORT_TARGET": "No VSS import target is set.",
    "VDS_S_ALREADY_EXISTS": "The object already exists; an existing object was returned.",
    "VDS_S_PROPERTIES_INCOMPLETE": "Only some of the properties could be retrieved.",
    "VDS_S_ISCSI_SESSION_NOT_FOUND_PERSISTENT_LOGIN_REMOVED": "The session was not found, but the persistent login was removed.",
    "VDS_S_ISCSI_PERSISTENT_LOGIN_MAY_NOT_BE_REMOVED": "The persistent login may not have been removed.",
    "VDS_S_ISCSI_LOGIN_ALREAD_EXISTS": "The login already exists.",
    "VDS_E_INITIATOR_ADAPTER_NOT_FOUND": "The initiator adapter was not found.",
    "VDS_E_TARGET_PORTAL_NOT_FOUND": "The target portal was not found.",
    "VDS_E_INVALID_PORT_PATH": "The port path is not valid.",
    "VDS_E_INVALID_ISCSI_TARGET_NAME": "The iSCSI target name is not valid.",
    "VDS_E_SET_TUNNEL_MODE_OUTER_ADDRESS": "The IPsec tunnel-mode outer address could not be set.",
    "VDS_E_ISCSI_GET_IKE_INFO": "The IKE information could not be read.",
    "VDS_E_ISCSI_SET_IKE_INFO": "The IKE information could not be set.",
    "VDS_E_SUBSYSTEM_ID_IS_NULL": "The subsystem id is null.",
    "VDS_E_ISCSI_INITIATOR_NODE_NAME": "The iSCSI initiator node name could not be set.",
    "VDS_E_ISCSI_GROUP_PRESHARE_KEY": "The iSCSI group preshared key could not be set.",
    "VDS_E_ISCSI_CHAP_SECRET": "The iSCSI CHAP secret could not be set.",
    "VDS_E_INVALID_IP_ADDRESS": "The IP address is not valid.",
    "VDS_E_INVALID_ISCSI_PATH": "The iSCSI path is not valid.",
    "VDS_S_NO_NOTIFICATION": "No notification was sent.",
}

GENERIC = [
    ("S_OK", 0x00000000, "The operation succeeded."),
    ("S_FALSE", 0x00000001, "The operation succeeded with a false or partial result (for example fewer items than asked for)."),
    ("E_NOTIMPL", 0x80004001, "Not implemented."),
    ("E_NOINTERFACE", 0x80004002, "No such interface is supported."),
    ("E_POINTER", 0x80004003, "A required pointer argument was null."),
    ("E_ABORT", 0x80004004, "The operation was aborted."),
    ("E_FAIL", 0x80004005, "Unspecified failure."),
    ("E_UNEXPECTED", 0x8000FFFF, "Catastrophic failure: an errant provider or an unexpected state."),
    ("E_ACCESSDENIED", 0x80070005, "General access denied error (HRESULT_FROM_WIN32(ERROR_ACCESS_DENIED))."),
    ("E_HANDLE", 0x80070006, "The handle is not valid (HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE))."),
    ("E_OUTOFMEMORY", 0x8007000E, "Not enough memory to complete the operation (HRESULT_FROM_WIN32(ERROR_OUTOFMEMORY))."),
    ("E_INVALIDARG", 0x80070057, "One or more arguments are not valid (HRESULT_FROM_WIN32(ERROR_INVALID_PARAMETER))."),
]

def from_name(name):
    words = re.sub(r"^VDS_[ES]_", "", name).replace("_", " ").lower()
    return words[0].upper() + words[1:] + "."

rows = []
for line in REF.read_text().splitlines():
    if not line.strip():
        continue
    val, name = line.split()
    rows.append((name, int(val, 16), DESC.get(name) or from_name(name)))
missing = set(DESC) - {r[0] for r in rows}
assert not missing, missing
rows.sort(key=lambda r: r[1])
allrows = GENERIC + rows

def lit(v):
    return f"0x{v:08X}_u32 as i32"

out = ["// @generated by crates/vds-model/tools/gen_hresults.py from vds-hresults.txt; do not edit by hand.",
       "// The table is the one source of names, values and descriptions of every HRESULT vds knows.",
       "",
       "use super::Hresult;",
       "",
       "impl Hresult {"]
for name, v, d in allrows:
    out.append(f"    /// {d}")
    out.append(f"    pub const {name}: Hresult = Hresult({lit(v)});")
out.append("}")
out.append("")
out.append("/// Every known code: `(code, name, one-line description)`, sorted by unsigned value.")
out.append("pub(crate) static TABLE: &[(Hresult, &str, &str)] = &[")
for name, v, d in sorted(allrows, key=lambda r: r[1]):
    d2 = d.replace("\\", "\\\\").replace('"', '\\"')
    out.append(f'    (Hresult::{name}, "{name}", "{d2}"),')
out.append("];")
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text("\n".join(out) + "\n")
print(f"wrote {len(allrows)} codes to {OUT}")
