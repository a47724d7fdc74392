//! BHS/Repr parsers: any bytes either fail `check_len` or parse; a parsed Repr re-emits to a
//! buffer that parses back to the same Repr.
#![no_main]

use iscsi_proto::wire::{Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    // Every accessor is safe after check_len.
    let _ = (
        packet.opcode(),
        packet.flags(),
        packet.csg(),
        packet.nsg(),
        packet.lun(),
    );
    let _ = (
        packet.itt(),
        packet.ttt(),
        packet.cmd_sn(),
        packet.max_cmd_sn(),
        packet.ahs(),
    );
    let _ = (
        packet.status_class(),
        packet.async_event(),
        packet.parameter3(),
        packet.data(),
    );
    let repr = Repr::parse(&packet).expect("check_len passed");
    let bytes = repr.to_vec().expect("a parsed data segment fits");
    let again = Packet::new_checked(&bytes[..]).expect("emitted PDU is complete");
    assert_eq!(Repr::parse(&again).expect("re-parse"), repr);
});
