//! Property tests: requests round-trip through their bytes; every parser survives any input;
//! well-formed target lists survive render → parse unchanged.

use proptest::prelude::*;

use tgt_proto::show::{
    Connection, Lun, Nexus, PortalEntry, State, Target, TargetAccount, parse_accounts, parse_lld,
    parse_portals, parse_system, parse_targets, render_accounts, render_portals, render_targets,
};
use tgt_proto::{
    AccountBinding, AccountDirection, AccountScope, Acl, Reply, ReplyRepr, Request, RequestRepr,
    Secret, SystemParam, TargetState, reply_text,
};

fn tid() -> impl Strategy<Value = u32> {
    prop_oneof![Just(1u32), Just(i32::MAX as u32), 1u32..5000]
}

fn target_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9:.-]{1,64}"
}

fn acl_value() -> impl Strategy<Value = String> {
    "[!-+--<>-~]{1,40}" // printable ASCII without space, ',' and '='
}

fn user() -> impl Strategy<Value = String> {
    "[!-+--~]{1,32}" // printable ASCII without space and ','
}

fn socket_addr() -> impl Strategy<Value = std::net::SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, port)| (ip, port).into()),
        (any::<[u16; 8]>(), 1u16..)
            .prop_map(|(ip, port)| (std::net::Ipv6Addr::from(ip), port).into()),
    ]
}

fn binding() -> impl Strategy<Value = AccountBinding> {
    (
        prop_oneof![
            tid().prop_map(AccountScope::Target),
            Just(AccountScope::Discovery)
        ],
        prop_oneof![
            Just(AccountDirection::Incoming),
            Just(AccountDirection::Outgoing)
        ],
    )
        .prop_map(|(scope, direction)| AccountBinding { scope, direction })
}

fn state() -> impl Strategy<Value = TargetState> {
    prop_oneof![Just(TargetState::Ready), Just(TargetState::Offline)]
}

/// Requests whose values follow the rules.
fn valid_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::ShowTargets),
        Just(Request::ShowPortals),
        Just(Request::ShowAccounts),
        Just(Request::ShowSystem),
        Just(Request::ShowLld),
        socket_addr().prop_map(|portal| Request::NewPortal { portal }),
        socket_addr().prop_map(|portal| Request::DeletePortal { portal }),
        (tid(), target_name()).prop_map(|(tid, name)| Request::NewTarget { tid, name }),
        (tid(), any::<bool>()).prop_map(|(tid, force)| Request::DeleteTarget { tid, force }),
        (tid(), state()).prop_map(|(tid, state)| Request::SetTargetState { tid, state }),
        (tid(), acl_value(), any::<bool>(), any::<bool>()).prop_map(|(tid, v, name, bind)| {
            let acl = if name {
                Acl::InitiatorName(v)
            } else {
                Acl::InitiatorAddress(v)
            };
            if bind {
                Request::BindAcl { tid, acl }
            } else {
                Request::UnbindAcl { tid, acl }
            }
        }),
        (user(), proptest::collection::vec(1u8..=255, 1..64)).prop_map(|(user, pw)| {
            Request::NewAccount {
                user,
                password: Secret::new(pw),
            }
        }),
        user().prop_map(|user| Request::DeleteAccount { user }),
        (user(), binding(), any::<bool>()).prop_map(|(user, binding, bind)| {
            if bind {
                Request::BindAccount { user, binding }
            } else {
                Request::UnbindAccount { user, binding }
            }
        }),
        proptest::collection::vec(("[A-Za-z0-9_.-]{1,20}", "[ -+--~]{0,20}"), 1..6).prop_map(
            |kv| Request::UpdateSystem {
                params: kv
                    .into_iter()
                    .map(|(k, v)| SystemParam::new(k, v))
                    .collect()
            }
        ),
    ]
}

/// Requests with arbitrary strings, valid or not.
fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u32>(), any::<String>()).prop_map(|(tid, name)| Request::NewTarget { tid, name }),
        (any::<u32>(), any::<String>()).prop_map(|(tid, v)| Request::BindAcl {
            tid,
            acl: Acl::InitiatorName(v)
        }),
        (
            any::<String>(),
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(user, pw)| Request::NewAccount {
                user,
                password: Secret::new(pw)
            }),
        (any::<String>(), any::<String>()).prop_map(|(k, v)| Request::UpdateSystem {
            params: vec![SystemParam::new(k, v)]
        }),
        (any::<String>(), binding())
            .prop_map(|(user, binding)| Request::BindAccount { user, binding }),
        "[a-z]{0,9000}".prop_map(|v| Request::UpdateSystem {
            params: vec![SystemParam::new("k", v)]
        }),
    ]
}

/// Lines that look like tgtd output, to reach deep into the parsers.
fn showish_text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("Target 1: iqn.x:t".to_owned()),
        Just("Target x: y".to_owned()),
        Just("    System information:".to_owned()),
        Just("        State: ready".to_owned()),
        Just("    I_T nexus information:".to_owned()),
        Just("        I_T nexus: 7".to_owned()),
        Just("            Initiator: iqn.a alias: b".to_owned()),
        Just("            Connection: 0".to_owned()),
        Just("                IP Address: 1.2.3.4".to_owned()),
        Just("    LUN information:".to_owned()),
        Just("        LUN: 0".to_owned()),
        Just("            Size: 1 MB, Block size: 512".to_owned()),
        Just("            Online: Yes".to_owned()),
        Just("    Account information:".to_owned()),
        Just("        u (outgoing)".to_owned()),
        Just("    ACL information:".to_owned()),
        Just("Portal: [::1]:3260,1".to_owned()),
        Just("Account list:".to_owned()),
        Just("LLDs:".to_owned()),
        Just("    iscsi: ready".to_owned()),
        Just("System:".to_owned()),
        Just("iSNS:".to_owned()),
        Just("    iSNSServerPort=3205".to_owned()),
        "[ -~]{0,30}",
        "( {0,16})[^\n]{0,20}",
    ];
    proptest::collection::vec(fragment, 0..40).prop_map(|lines| lines.join("\n"))
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.:_/-][a-zA-Z0-9 .:_/-]{0,20}[a-zA-Z0-9.:_/-]|[a-zA-Z0-9.:_/-]"
}

fn lun() -> impl Strategy<Value = Lun> {
    (
        (
            any::<u64>(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        ),
        proptest::option::of((any::<u64>(), any::<u32>())),
        proptest::collection::vec(proptest::option::of(any::<bool>()), 6),
        (
            proptest::option::of(text()),
            proptest::option::of(text().prop_filter("None is no path", |p| p != "None")),
            proptest::option::of(prop_oneof![Just(String::new()), text()]),
        ),
    )
        .prop_map(
            |((number, lun_type, scsi_id, scsi_sn), size, flags, (bst, bsp, bsf))| Lun {
                number,
                lun_type,
                scsi_id,
                scsi_sn,
                size_mb: size.map(|s| s.0),
                block_size: size.map(|s| s.1),
                online: flags[0],
                removable_media: flags[1],
                prevent_removal: flags[2],
                readonly: flags[3],
                swp: flags[4],
                thin_provisioning: flags[5],
                backing_store_type: bst,
                backing_store_path: bsp,
                backing_store_flags: bsf,
            },
        )
}

fn nexus() -> impl Strategy<Value = Nexus> {
    (
        any::<u64>(),
        proptest::option::of((
            "[a-z0-9.:-]{1,30}",
            proptest::option::of(text().prop_filter("none is no alias", |a| a != "none")),
        )),
        proptest::collection::vec((any::<u32>(), proptest::option::of(text())), 0..3),
    )
        .prop_map(|(id, who, conns)| Nexus {
            id,
            initiator: who.as_ref().map(|w| w.0.clone()),
            alias: who.and_then(|w| w.1),
            connections: conns
                .into_iter()
                .map(|(cid, ip_address)| Connection { cid, ip_address })
                .collect(),
        })
}

fn target() -> impl Strategy<Value = Target> {
    (
        (
            any::<u32>(),
            "[A-Za-z0-9:.-]{0,40}",
            proptest::option::of(text()),
        ),
        proptest::option::of(prop_oneof![
            Just(State::Ready),
            Just(State::Offline),
            "[a-z]{1,8}".prop_filter_map("known words parse to their variant", |s| {
                (s != "ready" && s != "offline").then_some(State::Other(s))
            }),
        ]),
        proptest::collection::vec(nexus(), 0..3),
        proptest::collection::vec(lun(), 0..3),
        proptest::collection::vec(
            (
                "[!-+--~]{1,12}".prop_filter("suffix", |u| !u.ends_with(" (outgoing)")),
                any::<bool>(),
            )
                .prop_map(|(user, out)| TargetAccount {
                    user,
                    direction: if out {
                        AccountDirection::Outgoing
                    } else {
                        AccountDirection::Incoming
                    },
                }),
            0..3,
        ),
        proptest::collection::vec(text(), 0..3),
    )
        .prop_map(
            |((tid, name, driver), state, nexuses, luns, accounts, acls)| Target {
                tid,
                name,
                driver,
                state,
                nexuses,
                luns,
                accounts,
                acls,
            },
        )
}

fn same(a: &Request, b: &Request) -> bool {
    format!("{a:?}") == format!("{b:?}")
        && a.emit().map(|x| x.to_vec()).ok() == b.emit().map(|x| x.to_vec()).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_requests_round_trip(req in valid_request()) {
        let bytes = req.emit();
        prop_assert!(bytes.is_ok(), "{:?} refused: {:?}", req, bytes.err());
        let bytes = bytes.unwrap_or_default();
        prop_assert!(bytes.len() <= 120 + 8192);
        let back = Request::parse(&bytes);
        prop_assert!(back.is_ok(), "{:?} does not parse back: {:?}", req, back.err());
        prop_assert!(same(&req, &back.unwrap_or(Request::ShowLld)));
    }

    #[test]
    fn any_request_is_refused_or_round_trips(req in any_request()) {
        if let Ok(bytes) = req.emit() {
            let back = Request::parse(&bytes);
            prop_assert!(back.is_ok(), "{:?} emitted but does not parse: {:?}", req, back.err());
            prop_assert!(same(&req, &back.unwrap_or(Request::ShowLld)));
        }
    }

    #[test]
    fn request_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Request::parse(&bytes);
        if let Ok(r) = RequestRepr::parse(&bytes) {
            // What parses as a repr emits back to the same bytes.
            prop_assert_eq!(r.to_bytes().map(|b| b.to_vec()).ok(), Some(bytes.clone()));
        }
    }

    #[test]
    fn request_parse_survives_mutated_valid_requests(
        req in valid_request(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()
    ) {
        let mut bytes = req.emit().map(|b| b.to_vec()).unwrap_or_default();
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = byte;
            let _ = Request::parse(&bytes);
            bytes.truncate(cut % bytes.len());
            let _ = Request::parse(&bytes);
        }
    }

    #[test]
    fn reply_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(h) = ReplyRepr::parse(&bytes) {
            prop_assert!(h.len >= 8);
            prop_assert_eq!(h.payload_len() + 8, h.len as usize);
            prop_assert_eq!(ReplyRepr::parse(&h.emit()), Ok(h));
        }
        if let Ok(r) = Reply::parse(&bytes) {
            prop_assert_eq!(r.payload.len() + 8, bytes.len());
        }
        let _ = reply_text(&bytes);
    }

    #[test]
    fn show_parsers_never_panic_on_any_string(s in any::<String>()) {
        let _ = parse_targets(&s);
        let _ = parse_portals(&s);
        let _ = parse_accounts(&s);
        let _ = parse_system(&s);
        let _ = parse_lld(&s);
    }

    #[test]
    fn show_parsers_never_panic_on_showish_text(s in showish_text()) {
        let _ = parse_targets(&s);
        let _ = parse_portals(&s);
        let _ = parse_accounts(&s);
        let _ = parse_system(&s);
        let _ = parse_lld(&s);
    }

    #[test]
    fn rendered_targets_parse_back(targets in proptest::collection::vec(target(), 0..4)) {
        let text = render_targets(&targets);
        prop_assert_eq!(parse_targets(&text), Ok(targets));
    }

    #[test]
    fn rendered_portals_and_accounts_parse_back(
        portals in proptest::collection::vec((socket_addr(), any::<u16>()), 0..5),
        users in proptest::collection::vec("[!-+--~]{1,12}", 0..5),
    ) {
        let portals: Vec<PortalEntry> =
            portals.into_iter().map(|(addr, tpgt)| PortalEntry { addr, tpgt }).collect();
        prop_assert_eq!(parse_portals(&render_portals(&portals)), Ok(portals));
        prop_assert_eq!(parse_accounts(&render_accounts(&users)), Ok(users));
    }
}
