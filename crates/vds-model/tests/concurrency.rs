//! Many threads querying while another refreshes (the array changing underneath) and another
//! creates and deletes targets: no deadlock, no torn result, and every call returns data or one of
//! the documented codes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use vds_model::sim::SimBackend;
use vds_model::{Hresult, HwProvider, IscsiPortalStatus, PortalSnapshot, VdsIpAddress};

const RUN_FOR: Duration = Duration::from_millis(1500);
const DEADLINE: Duration = Duration::from_secs(60);

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn documented(e: vds_model::Error) -> bool {
    let hr = e.code();
    [
        Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS,
        Hresult::VDS_E_OBJECT_DELETED,
        Hresult::VDS_E_OBJECT_NOT_FOUND,
        Hresult::VDS_E_OBJECT_STATUS_FAILED,
    ]
    .contains(&hr)
}

#[test]
fn queries_refreshes_and_deletes_at_once() {
    let backend = SimBackend::demo();
    let control = backend.control();
    let provider = HwProvider::new(backend);
    provider.initialize().expect("init");
    block(provider.reenumerate()).expect("reenumerate");
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let mut threads = 0;

    // Readers: every enumeration is one consistent picture: the portal count is one the refresher
    // ever publishes (5 or 6), and every group's portals are portals of the subsystem.
    for _ in 0..6 {
        threads += 1;
        let (provider, stop, answered, done) = (
            provider.clone(),
            stop.clone(),
            answered.clone(),
            done_tx.clone(),
        );
        std::thread::spawn(move || {
            let result = (|| -> Result<(), String> {
                while !stop.load(Ordering::Relaxed) {
                    let ss = match provider.sub_system_by_key("sim-array-1") {
                        Ok(ss) => ss,
                        Err(hr) => return Err(format!("sub_system_by_key: {hr}")),
                    };
                    match ss.query_portals() {
                        Ok(e) => {
                            let n = e.len();
                            if n != 5 && n != 6 {
                                return Err(format!("torn portal list of {n}"));
                            }
                            for p in e {
                                match p.get_properties() {
                                    Ok(_) => {}
                                    Err(hr) if documented(hr.clone()) => {}
                                    Err(hr) => return Err(format!("get_properties: {hr}")),
                                }
                            }
                        }
                        Err(hr) if documented(hr.clone()) => {}
                        Err(hr) => return Err(format!("query_portals: {hr}")),
                    }
                    match ss.query_targets() {
                        Ok(targets) => {
                            for t in targets {
                                match t.query_portal_groups() {
                                    Ok(groups) => {
                                        for g in groups {
                                            if let Ok(portals) = g.query_associated_portals() {
                                                for p in portals {
                                                    if let Err(hr) = p.get_properties() {
                                                        if !documented(hr.clone()) {
                                                            return Err(format!(
                                                                "group portal: {hr}"
                                                            ));
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    Err(hr) if documented(hr.clone()) => {}
                                    Err(hr) => return Err(format!("query_portal_groups: {hr}")),
                                }
                            }
                        }
                        Err(hr) if documented(hr.clone()) => {}
                        Err(hr) => return Err(format!("query_targets: {hr}")),
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })();
            let _ = done.send(result);
        });
    }

    // Refresher: toggles a sixth portal in the array and refreshes.
    {
        threads += 1;
        let (provider, stop, done) = (provider.clone(), stop.clone(), done_tx.clone());
        let extra = VdsIpAddress::Ipv4 {
            addr: [192, 0, 2, 77].into(),
            port: 3260,
        };
        std::thread::spawn(move || {
            let result = (|| -> Result<(), String> {
                let mut on = false;
                while !stop.load(Ordering::Relaxed) {
                    on = !on;
                    control.edit(|subs| {
                        if on {
                            subs[0].portals.push(PortalSnapshot {
                                address: extra.clone(),
                                status: IscsiPortalStatus::Online,
                            });
                        } else {
                            subs[0].portals.retain(|p| p.address != extra);
                        }
                    });
                    match block(provider.refresh()) {
                        Ok(report) => {
                            for (_, _, e) in report.failures {
                                if !documented(e.clone()) {
                                    return Err(format!("refresh: {e}"));
                                }
                            }
                        }
                        Err(hr) if documented(hr.clone()) => {}
                        Err(hr) => return Err(format!("refresh: {hr}")),
                    }
                }
                Ok(())
            })();
            let _ = done.send(result);
        });
    }

    // Mutator: creates and deletes a target, and flips a portal's status.
    {
        threads += 1;
        let (provider, stop, done) = (provider.clone(), stop.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let result = (|| -> Result<(), String> {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let ss = provider
                        .sub_system_by_key("sim-array-1")
                        .map_err(|hr| hr.to_string())?;
                    match block(
                        ss.create_target(Some(&format!("iqn.2026-11.test:churn{i}")), "churn"),
                    ) {
                        Ok(t) => match block(t.delete()) {
                            Ok(()) => {}
                            Err(hr) if documented(hr.clone()) => {}
                            Err(hr) => return Err(format!("delete: {hr}")),
                        },
                        Err(hr) if documented(hr.clone()) => {}
                        Err(hr) => return Err(format!("create_target: {hr}")),
                    }
                    if let Ok(mut e) = ss.query_portals() {
                        if let Some(p) = e.next(1).0.pop() {
                            let s = if i % 2 == 0 {
                                IscsiPortalStatus::Online
                            } else {
                                IscsiPortalStatus::Offline
                            };
                            match block(p.set_status(s)) {
                                Ok(()) => {}
                                Err(hr) if documented(hr.clone()) => {}
                                Err(hr) => return Err(format!("set_status: {hr}")),
                            }
                        }
                    }
                }
                Ok(())
            })();
            let _ = done.send(result);
        });
    }
    drop(done_tx);

    std::thread::sleep(RUN_FOR);
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + DEADLINE;
    for _ in 0..threads {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("a thread did not finish within {DEADLINE:?}: deadlock"),
        }
    }
    assert!(
        answered.load(Ordering::Relaxed) > 100,
        "readers made progress"
    );
}
