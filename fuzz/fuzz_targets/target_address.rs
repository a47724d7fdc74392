//! The TargetAddress parser: never panics; whatever parses formats back to a value that parses
//! to the same address.
#![no_main]

use iscsi_proto::TargetAddress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(a) = TargetAddress::parse(s) else {
        return;
    };
    let formatted = a.to_string();
    assert_eq!(
        TargetAddress::parse(&formatted).expect("formatted address parses"),
        a
    );
    let _ = iscsi_proto::Host::parse(s);
});
