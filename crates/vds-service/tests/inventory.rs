//! `Service::inventory` reads every subsystem in one pass and says what the per-object queries
//! say, object for object.

use vds_service::{Service, SubsystemSel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_equals_the_queries_it_replaces() {
    let service = Service::simulator().await.expect("simulator");
    let inventory = service.inventory(None).expect("inventory");
    let rows: Vec<_> = service
        .list_subsystems(None)
        .expect("subsystems")
        .into_iter()
        .filter(|r| r.id.is_some())
        .collect();
    assert_eq!(
        inventory.iter().map(|s| s.row.clone()).collect::<Vec<_>>(),
        rows
    );
    assert!(
        inventory.iter().any(|s| !s.targets.is_empty()),
        "a fleet with targets"
    );
    for sub in &inventory {
        let sel = SubsystemSel {
            provider: Some(sub.row.provider.clone()),
            name: sub.row.name.clone(),
        };
        assert_eq!(sub.portals, service.list_portals(&sel).expect("portals"));
        let targets = service.list_targets(&sel).expect("targets");
        assert_eq!(
            sub.targets
                .iter()
                .map(|t| t.target.clone())
                .collect::<Vec<_>>(),
            targets
        );
        for t in &sub.targets {
            let detail = service
                .detail_target(&sel, &t.target.iscsi_name)
                .expect("detail");
            assert_eq!(*t, detail);
        }
    }
    // One provider only, and an unknown one.
    assert_eq!(
        service
            .inventory(Some(vds_service::SIMULATOR_PROVIDER))
            .expect("one provider")
            .len(),
        inventory.len()
    );
    let e = service.inventory(Some("nobody")).unwrap_err();
    assert_eq!(e, vds_model::Hresult::VDS_E_OBJECT_NOT_FOUND, "{e}");
}
