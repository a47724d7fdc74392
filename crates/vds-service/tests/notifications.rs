//! The service's sinks (`IVdsService::Advise`) get a notification once the cache holds what it
//! describes: whoever re-reads the store on PORTAL_MODIFY (another process, or the daemon after a
//! restart) reads the new status, never the one before.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use vds_model::{IscsiPortalStatus, VdsIpAddress};
use vds_service::{Change, Service, ServiceOptions, SubsystemSel};

const ARRAY: &str = "sim-array-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_queries_on_a_notification_reads_the_new_state() {
    let service = Service::simulator().await.expect("simulator");
    let sel = SubsystemSel::named(ARRAY);
    let portal = service
        .list_portals(&sel)
        .expect("portals")
        .into_iter()
        .find(|p| p.status == "ONLINE" && p.address_type == "IPV4")
        .expect("an online IPv4 portal");
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let cookie = {
        let (root, seen) = (service.root().to_path_buf(), seen.clone());
        service.advise(move |_provider, batch| {
            // A reader of its own, as another process is: it reads the store, not this
            // service's memory.
            let reader = Service::open(ServiceOptions::new(&root)).expect("open the store");
            for n in batch {
                let status = reader
                    .list_portals(&SubsystemSel::named(ARRAY))
                    .expect("query from the sink")
                    .into_iter()
                    .find(|p| p.id == n.id.to_string())
                    .map(|p| p.status);
                if let Some(status) = status {
                    seen.lock().unwrap().push((n.event.name(), status));
                }
            }
        })
    };
    for (status, label) in [
        (IscsiPortalStatus::Offline, "OFFLINE"),
        (IscsiPortalStatus::Online, "ONLINE"),
    ] {
        let report = service
            .change(
                &sel,
                Change::SetPortalStatus {
                    portal: VdsIpAddress::Ipv4 {
                        addr: portal.address.parse::<Ipv4Addr>().expect("IPv4"),
                        port: portal.port,
                    },
                    status,
                },
            )
            .await
            .expect("change");
        assert_eq!(report.notifications.len(), 1, "{report:?}");
        let last = seen.lock().unwrap().last().cloned();
        assert_eq!(
            last,
            Some(("PORTAL_MODIFY".to_string(), label.to_string())),
            "the sink read the status before the change was saved"
        );
    }
    service.unadvise(cookie).expect("unadvise");
}
