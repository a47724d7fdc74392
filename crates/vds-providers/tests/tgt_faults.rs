//! The tgt provider against a scripted stand-in for tgtd's management socket, for the two faults a
//! real tgtd cannot be made to commit: a reply cut short, and a reply larger than the client's
//! cap. Each gives a clear error (`VDS_E_BAD_PROVIDER_DATA`, naming the socket and what was wrong)
//! and leaves the cached picture exactly as it was, for refreshes and changes alike. And no tgtd at
//! all: no socket, or a socket file nobody listens on, is `OFFLINE` with the reason.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tgt_client::ClientConfig;
use tgt_proto::show::{Lun, PortalEntry, Target, render_portals, render_targets};
use tgt_proto::wire::REQUEST_HEADER_LEN;
use tgt_proto::{ErrorCode, ReplyRepr, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use vds_model::{Hresult, HwProvider, SubSystemStatus};
use vds_providers::tgt::TgtBackend;

use common::MemoryState;

/// How the stand-in answers `show targets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    /// As tgtd would.
    Whole,
    /// The header announces the whole reply; the connection closes half-way.
    CutShort,
    /// The header announces 9 MiB, over the client's 8 MiB cap.
    TooLarge,
}

async fn read_request(s: &mut UnixStream) -> Option<Vec<u8>> {
    let mut req = vec![0u8; REQUEST_HEADER_LEN];
    s.read_exact(&mut req).await.ok()?;
    let len = u32::from_le_bytes([req[72], req[73], req[74], req[75]]) as usize;
    req.resize(len.max(REQUEST_HEADER_LEN), 0);
    s.read_exact(&mut req[REQUEST_HEADER_LEN..]).await.ok()?;
    Some(req)
}

fn reply(text: &str) -> Vec<u8> {
    let mut payload = text.as_bytes().to_vec();
    payload.push(0);
    let mut out = ReplyRepr {
        code: ErrorCode::Success,
        len: 8 + payload.len() as u32,
    }
    .emit()
    .to_vec();
    out.extend_from_slice(&payload);
    out
}

/// Serves the socket at `path` until the test ends, answering as `script` says.
fn serve(path: PathBuf, script: Arc<Mutex<Script>>) {
    let listener = UnixListener::bind(&path).expect("bind the stand-in socket");
    tokio::spawn(async move {
        let target = Target {
            tid: 1,
            name: "iqn.2026-12.test.vds:t1".into(),
            luns: vec![Lun::default()],
            ..Target::default()
        };
        let portals = render_portals(&[PortalEntry {
            addr: "127.0.0.1:3260".parse().expect("address"),
            tpgt: 1,
        }]);
        let targets = render_targets(&[target]);
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let Some(req) = read_request(&mut s).await else {
                continue;
            };
            let mode = *script.lock().unwrap_or_else(|e| e.into_inner());
            let bytes = match Request::parse(&req) {
                Ok(Request::ShowPortals) => reply(&portals),
                Ok(Request::ShowTargets) => match mode {
                    Script::Whole => reply(&targets),
                    Script::CutShort => {
                        let whole = reply(&targets);
                        whole[..whole.len() / 2].to_vec()
                    }
                    Script::TooLarge => ReplyRepr {
                        code: ErrorCode::Success,
                        len: 9 << 20,
                    }
                    .emit()
                    .to_vec(),
                },
                _ => ReplyRepr::new(ErrorCode::InvalidRequest).emit().to_vec(),
            };
            let _ = s.write_all(&bytes).await;
            // Dropping `s` closes the connection, as tgtd does.
        }
    });
}

#[test]
fn a_reply_cut_short_or_over_the_cap_fails_clearly_and_leaves_the_cache() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let path = dir.path().join("ipc.0");
    let script = Arc::new(Mutex::new(Script::Whole));
    rt.block_on(async { serve(path.clone(), script.clone()) });
    let state = Arc::new(MemoryState::default());
    let provider = HwProvider::new(TgtBackend::new(
        "lab",
        ClientConfig::new(&path),
        state.clone(),
    ));
    provider.initialize().expect("init");
    rt.block_on(provider.reenumerate()).expect("reenumerate");
    let sub = provider.sub_system_by_key("lab").expect("subsystem");
    let before = provider.export();
    assert_eq!(before[0].status, SubSystemStatus::Online);
    assert_eq!(before[0].targets.len(), 1);
    let state_before = state.read_now();

    for (mode, words) in [
        (Script::CutShort, "cut short"),
        (Script::TooLarge, "exceeds the limit"),
    ] {
        *script.lock().expect("script") = mode;
        let e = rt
            .block_on(provider.refresh_subsystem(&sub))
            .expect_err("a broken reply");
        assert_eq!(e, Hresult::VDS_E_BAD_PROVIDER_DATA, "{mode:?}");
        let text = e.to_string();
        assert!(text.contains(words), "{mode:?}: {text}");
        assert!(text.contains(&*path.to_string_lossy()), "{text}");
        assert!(text.contains("subsystem \"lab\""), "{text}");
        assert_eq!(provider.export(), before, "{mode:?}: the cache changed");
        // A change that meets it fails the same way and changes nothing either.
        let t = sub
            .target_by_name("iqn.2026-12.test.vds:t1")
            .expect("target");
        let e = rt
            .block_on(t.set_friendly_name("new name"))
            .expect_err("a broken reply");
        assert_eq!(e, Hresult::VDS_E_BAD_PROVIDER_DATA, "{mode:?}");
        assert_eq!(provider.export(), before, "{mode:?}: the cache changed");
        assert_eq!(
            state.read_now(),
            state_before,
            "{mode:?}: the state changed"
        );
        assert_eq!(t.get_properties().expect("props").friendly_name, "");
    }
    // The provider's cache stays usable: once tgtd answers properly, all is well.
    *script.lock().expect("script") = Script::Whole;
    rt.block_on(provider.refresh()).expect("refresh");
    assert_eq!(provider.export(), before);
    assert_eq!(provider.cache_health(), vds_model::CacheHealth::Good);
}

#[test]
fn no_socket_or_a_dead_one_is_offline_with_the_reason() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let missing = dir.path().join("missing.0");
    let dead = dir.path().join("dead.0");
    // Bound then dropped: the file stays and nobody listens (tgtd died).
    drop(std::os::unix::net::UnixListener::bind(&dead).expect("bind"));
    for (path, words) in [
        (&missing, "no management socket"),
        (&dead, "connection refused"),
    ] {
        let provider = HwProvider::new(TgtBackend::new(
            "lab",
            ClientConfig::new(path),
            Arc::new(MemoryState::default()),
        ));
        provider.initialize().expect("init");
        rt.block_on(provider.reenumerate()).expect("reenumerate");
        let snap = &provider.export()[0];
        assert_eq!(snap.status, SubSystemStatus::Offline, "{path:?}");
        let detail = snap.detail.clone().unwrap_or_default();
        assert!(detail.starts_with("HRESULT_FROM_WIN32(10061)"), "{detail}");
        assert!(detail.contains(words), "{detail}");
        assert!(detail.contains(&*path.to_string_lossy()), "{detail}");
    }
}
