//! tgtd management replies and requests: the reply header, every `show` parser and the request
//! parser never panic; what parses renders (or emits) back to something that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tgt_proto::show::{
    parse_accounts, parse_lld, parse_portals, parse_system, parse_targets, render_accounts,
    render_portals, render_targets,
};
use tgt_proto::{Reply, ReplyRepr, Request, reply_text};

fn shows(text: &str) {
    if let Ok(targets) = parse_targets(text) {
        assert_eq!(parse_targets(&render_targets(&targets)), Ok(targets));
    }
    if let Ok(portals) = parse_portals(text) {
        assert_eq!(parse_portals(&render_portals(&portals)), Ok(portals));
    }
    if let Ok(users) = parse_accounts(text) {
        assert_eq!(parse_accounts(&render_accounts(&users)), Ok(users));
    }
    let _ = parse_system(text);
    let _ = parse_lld(text);
}

fuzz_target!(|data: &[u8]| {
    // As a reply: header, then the text after it.
    if let Ok(h) = ReplyRepr::parse(data) {
        assert!(h.len >= 8);
        assert_eq!(ReplyRepr::parse(&h.emit()), Ok(h));
        if let Ok(r) = Reply::parse(data) {
            assert_eq!(r.payload.len(), h.payload_len());
        }
        shows(&reply_text(&data[8..]));
    }
    // As bare text.
    shows(&String::from_utf8_lossy(data));
    // As a request.
    if let Ok(req) = Request::parse(data) {
        let bytes = req.emit().expect("a parsed request emits");
        let again = Request::parse(&bytes).expect("an emitted request parses");
        assert_eq!(format!("{again:?}"), format!("{req:?}"));
        assert_eq!(again.emit().expect("emits again").as_slice(), bytes.as_slice());
    }
});
