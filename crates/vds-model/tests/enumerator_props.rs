//! Property tests: the enumerator against a simple model, and address conversions.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;
use vds_model::{EnumVdsObject, Hresult, VdsIpAddress, ffi};

#[derive(Clone, Debug)]
enum Op {
    Next(u32),
    Skip(u32),
    Reset,
    Clone,
    Switch,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..12).prop_map(Op::Next),
        (0u32..12).prop_map(Op::Skip),
        Just(Op::Reset),
        Just(Op::Clone),
        Just(Op::Switch),
    ]
}

proptest! {
    /// Any interleaving of next/skip/reset/clone on several enumerators matches a model of
    /// (items, cursor) per enumerator.
    #[test]
    fn enumerator_matches_model(len in 0usize..20, ops in proptest::collection::vec(op(), 0..60)) {
        let items: Vec<usize> = (0..len).collect();
        let mut enums = vec![EnumVdsObject::new(items.clone())];
        let mut cursors = vec![0usize];
        let mut current = 0usize;
        for op in ops {
            let e = &mut enums[current];
            let c = &mut cursors[current];
            match op {
                Op::Next(celt) => {
                    let (got, hr) = e.next(celt);
                    let end = (*c + celt as usize).min(len);
                    prop_assert_eq!(&got[..], &items[*c..end]);
                    let want = if got.len() == celt as usize { Hresult::S_OK } else { Hresult::S_FALSE };
                    prop_assert_eq!(hr, want);
                    prop_assert!(got.len() <= celt as usize);
                    *c = end;
                }
                Op::Skip(celt) => {
                    let hr = e.skip(celt);
                    if *c + celt as usize <= len {
                        prop_assert_eq!(hr, Hresult::S_OK);
                        *c += celt as usize;
                    } else {
                        prop_assert_eq!(hr, Hresult::S_FALSE);
                        *c = len;
                    }
                }
                Op::Reset => {
                    prop_assert_eq!(e.reset(), Hresult::S_OK);
                    *c = 0;
                }
                Op::Clone => {
                    let copy = e.clone();
                    let pos = *c;
                    enums.push(copy);
                    cursors.push(pos);
                }
                Op::Switch => {
                    current = (current + 1) % enums.len();
                }
            }
            for (e, c) in enums.iter().zip(&cursors) {
                prop_assert_eq!(e.position(), *c);
            }
        }
        // Draining by iterator yields exactly the remainder.
        let c = cursors[current];
        let rest: Vec<usize> = (&mut enums[current]).collect();
        prop_assert_eq!(&rest[..], &items[c..]);
    }

    #[test]
    fn socket_addr_round_trips(ip in any::<u32>(), port in any::<u16>()) {
        let sa = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port));
        let a = VdsIpAddress::from(sa);
        prop_assert_eq!(a.to_socket_addr(), Some(sa));
        let raw = ffi::VDS_IPADDRESS::from(&a);
        prop_assert_eq!(raw.ipv4Address, ip);
        prop_assert_eq!(VdsIpAddress::from(&raw), a);
    }

    #[test]
    fn ipv6_round_trips_with_scope(ip in any::<u128>(), port in any::<u16>(), flow in any::<u32>(), scope in any::<u32>()) {
        let sa = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope));
        let a = VdsIpAddress::from(sa);
        prop_assert_eq!(a.to_socket_addr(), Some(sa));
        prop_assert_eq!(VdsIpAddress::from(&ffi::VDS_IPADDRESS::from(&a)), a);
    }

    #[test]
    fn text_round_trips_through_ffi(text in "[^\u{0}]{0,256}", port in any::<u32>()) {
        match VdsIpAddress::text(text.clone(), port) {
            Ok(a) => prop_assert_eq!(VdsIpAddress::from(&ffi::VDS_IPADDRESS::from(&a)), a),
            Err(hr) => {
                prop_assert_eq!(hr, Hresult::E_INVALIDARG);
                prop_assert!(text.encode_utf16().count() > 256);
            }
        }
    }

    #[test]
    fn unknown_types_and_statuses_round_trip(t in any::<i32>(), s in any::<i32>(), port in any::<u32>()) {
        let raw = ffi::VDS_IPADDRESS { r#type: t, ulPort: port, ..Default::default() };
        let a = VdsIpAddress::from(&raw);
        prop_assert_eq!(a.address_type().0, t);
        prop_assert_eq!(ffi::VDS_IPADDRESS::from(&a).r#type, t);
        prop_assert_eq!(vds_model::IscsiPortalStatus::from_raw(s).to_raw(), s);
        prop_assert_eq!(vds_model::SubSystemStatus::from_raw(s).to_raw(), s);
    }
}
