//! C-layout mirrors of the VDS structures, for FFI and for checking the layout against the headers.
//!
//! Field names follow `vds.h`. IPv4 addresses are host-order numbers with the first octet in bits
//! 24–31 (10.1.2.3 is `0x0A010203`), as the structure's bit layout says, whatever its prose claims.
#![allow(non_camel_case_types, non_snake_case)]

use crate::{IscsiPortalProp, IscsiPortalStatus, ObjectId, VdsIpAddress};

/// `GUID`: 16 bytes, 4-byte aligned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GUID {
    /// `Data1`
    pub data1: u32,
    /// `Data2`
    pub data2: u16,
    /// `Data3`
    pub data3: u16,
    /// `Data4`
    pub data4: [u8; 8],
}

impl From<ObjectId> for GUID {
    fn from(id: ObjectId) -> GUID {
        let (data1, data2, data3, d4) = id.0.as_fields();
        GUID {
            data1,
            data2,
            data3,
            data4: *d4,
        }
    }
}

impl From<GUID> for ObjectId {
    fn from(g: GUID) -> ObjectId {
        ObjectId(uuid::Uuid::from_fields(g.data1, g.data2, g.data3, &g.data4))
    }
}

/// `VDS_IPADDRESS` (552 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VDS_IPADDRESS {
    /// `VDS_IPADDRESS_TYPE`
    pub r#type: i32,
    /// IPv4 as a number, first octet high.
    pub ipv4Address: u32,
    /// IPv6 in network byte order.
    pub ipv6Address: [u8; 16],
    /// IPv6 flow information.
    pub ulIpv6FlowInfo: u32,
    /// IPv6 scope id.
    pub ulIpv6ScopeId: u32,
    /// UTF-16 text, NUL-terminated.
    pub wszTextAddress: [u16; 257],
    /// TCP port.
    pub ulPort: u32,
}

/// `VDS_ISCSI_PORTAL_PROP` (572 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VDS_ISCSI_PORTAL_PROP {
    /// `id`
    pub id: GUID,
    /// `address`
    pub address: VDS_IPADDRESS,
    /// `status` (`VDS_ISCSI_PORTAL_STATUS`)
    pub status: i32,
}

/// `VDS_ISCSI_PORTALGROUP_PROP` (20 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VDS_ISCSI_PORTALGROUP_PROP {
    /// `id`
    pub id: GUID,
    /// `tag`
    pub tag: u16,
}

/// `VDS_PORTAL_NOTIFICATION` (20 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VDS_PORTAL_NOTIFICATION {
    /// `ulEvent`
    pub ulEvent: u32,
    /// `portalId`
    pub portalId: GUID,
}

impl Default for VDS_IPADDRESS {
    fn default() -> VDS_IPADDRESS {
        VDS_IPADDRESS {
            r#type: 0,
            ipv4Address: 0,
            ipv6Address: [0; 16],
            ulIpv6FlowInfo: 0,
            ulIpv6ScopeId: 0,
            wszTextAddress: [0; 257],
            ulPort: 0,
        }
    }
}

impl From<&VdsIpAddress> for VDS_IPADDRESS {
    fn from(a: &VdsIpAddress) -> VDS_IPADDRESS {
        let mut out = VDS_IPADDRESS {
            r#type: a.address_type().0,
            ulPort: a.port(),
            ..Default::default()
        };
        match a {
            VdsIpAddress::Ipv4 { addr, .. } => out.ipv4Address = u32::from(*addr),
            VdsIpAddress::Ipv6 {
                addr,
                flow_info,
                scope_id,
                ..
            } => {
                out.ipv6Address = addr.octets();
                out.ulIpv6FlowInfo = *flow_info;
                out.ulIpv6ScopeId = *scope_id;
            }
            VdsIpAddress::Text { text, .. } => {
                // VdsIpAddress::text guarantees at most 256 units; take 256 at most regardless, so
                // the terminating NUL always fits.
                for (slot, unit) in out
                    .wszTextAddress
                    .iter_mut()
                    .zip(text.encode_utf16().take(256))
                {
                    *slot = unit;
                }
            }
            VdsIpAddress::Empty | VdsIpAddress::Unknown { .. } => {}
        }
        out
    }
}

impl From<&VDS_IPADDRESS> for VdsIpAddress {
    /// Text that is not valid UTF-16 is decoded lossily; a missing NUL ends the text at 257 units.
    fn from(raw: &VDS_IPADDRESS) -> VdsIpAddress {
        let port = raw.ulPort;
        match crate::IpAddressType(raw.r#type) {
            crate::IpAddressType::IPV4 => VdsIpAddress::Ipv4 {
                addr: raw.ipv4Address.into(),
                port,
            },
            crate::IpAddressType::IPV6 => VdsIpAddress::Ipv6 {
                addr: raw.ipv6Address.into(),
                flow_info: raw.ulIpv6FlowInfo,
                scope_id: raw.ulIpv6ScopeId,
                port,
            },
            crate::IpAddressType::TEXT => {
                let len = raw
                    .wszTextAddress
                    .iter()
                    .position(|u| *u == 0)
                    .unwrap_or(257);
                let text = String::from_utf16_lossy(&raw.wszTextAddress[..len]);
                VdsIpAddress::Text { text, port }
            }
            crate::IpAddressType::EMPTY => VdsIpAddress::Empty,
            crate::IpAddressType(other) => VdsIpAddress::Unknown {
                address_type: other,
                port,
            },
        }
    }
}

impl From<&IscsiPortalProp> for VDS_ISCSI_PORTAL_PROP {
    fn from(p: &IscsiPortalProp) -> VDS_ISCSI_PORTAL_PROP {
        VDS_ISCSI_PORTAL_PROP {
            id: p.id.into(),
            address: (&p.address).into(),
            status: p.status.to_raw(),
        }
    }
}

impl From<&VDS_ISCSI_PORTAL_PROP> for IscsiPortalProp {
    fn from(p: &VDS_ISCSI_PORTAL_PROP) -> IscsiPortalProp {
        IscsiPortalProp {
            id: p.id.into(),
            address: (&p.address).into(),
            status: IscsiPortalStatus::from_raw(p.status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_headers() {
        assert_eq!(size_of::<GUID>(), 16);
        assert_eq!(size_of::<VDS_IPADDRESS>(), 552);
        assert_eq!(offset_of!(VDS_IPADDRESS, ipv4Address), 4);
        assert_eq!(offset_of!(VDS_IPADDRESS, ipv6Address), 8);
        assert_eq!(offset_of!(VDS_IPADDRESS, ulIpv6FlowInfo), 24);
        assert_eq!(offset_of!(VDS_IPADDRESS, ulIpv6ScopeId), 28);
        assert_eq!(offset_of!(VDS_IPADDRESS, wszTextAddress), 32);
        assert_eq!(offset_of!(VDS_IPADDRESS, ulPort), 548);
        assert_eq!(size_of::<VDS_ISCSI_PORTAL_PROP>(), 572);
        assert_eq!(offset_of!(VDS_ISCSI_PORTAL_PROP, address), 16);
        assert_eq!(offset_of!(VDS_ISCSI_PORTAL_PROP, status), 568);
        assert_eq!(size_of::<VDS_ISCSI_PORTALGROUP_PROP>(), 20);
        assert_eq!(size_of::<VDS_PORTAL_NOTIFICATION>(), 20);
        assert_eq!(offset_of!(VDS_PORTAL_NOTIFICATION, portalId), 4);
    }

    #[test]
    fn ipv4_is_a_number_with_the_first_octet_high() {
        let a = VdsIpAddress::Ipv4 {
            addr: [10, 1, 2, 3].into(),
            port: 3260,
        };
        let raw = VDS_IPADDRESS::from(&a);
        assert_eq!(raw.r#type, 1);
        assert_eq!(raw.ipv4Address, 0x0A01_0203);
        // Stored little-endian on x86-64: bytes 03 02 01 0A.
        assert_eq!(raw.ipv4Address.to_le_bytes(), [3, 2, 1, 10]);
        assert_eq!(VdsIpAddress::from(&raw), a);
    }

    #[test]
    fn text_is_nul_terminated_utf16_and_unknown_types_round_trip() {
        let a = VdsIpAddress::text("array.example", 3260).unwrap();
        let raw = VDS_IPADDRESS::from(&a);
        assert_eq!(raw.r#type, 0);
        assert_eq!(raw.wszTextAddress[13], 0);
        assert_eq!(VdsIpAddress::from(&raw), a);
        let full = VdsIpAddress::text("x".repeat(256), 1).unwrap();
        let raw = VDS_IPADDRESS::from(&full);
        assert_eq!(raw.wszTextAddress[256], 0);
        assert_eq!(VdsIpAddress::from(&raw), full);

        let mut raw = VDS_IPADDRESS {
            r#type: 77,
            ulPort: 9,
            ..Default::default()
        };
        let a = VdsIpAddress::from(&raw);
        assert_eq!(
            a,
            VdsIpAddress::Unknown {
                address_type: 77,
                port: 9
            }
        );
        assert_eq!(VDS_IPADDRESS::from(&a).r#type, 77);
        // A text with no NUL at all does not read past the array.
        raw.r#type = 0;
        raw.wszTextAddress = [u16::from(b'a'); 257];
        assert!(
            matches!(VdsIpAddress::from(&raw), VdsIpAddress::Text { ref text, .. } if text.len() == 257)
        );
    }

    #[test]
    fn portal_prop_round_trips_unknown_status() {
        let p = IscsiPortalProp {
            id: ObjectId::provider("x"),
            address: VdsIpAddress::Empty,
            status: IscsiPortalStatus::from_raw(3),
        };
        let raw = VDS_ISCSI_PORTAL_PROP::from(&p);
        assert_eq!(raw.status, 3);
        assert_eq!(IscsiPortalProp::from(&raw), p);
    }
}
