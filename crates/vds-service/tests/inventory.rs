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

/// `inventory_with` reads less, never something else: to the portals it is the inventory without
/// the targets; of one subsystem it is that subsystem's entry, numbered as among its provider's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shallower_or_narrower_inventory_is_part_of_the_whole() {
    use vds_service::Depth;
    let service = Service::simulator().await.expect("simulator");
    let whole = service.inventory(None).expect("inventory");
    let shallow = service
        .inventory_with(None, None, Depth::Portals)
        .expect("portals only");
    assert_eq!(shallow.len(), whole.len());
    for (s, w) in shallow.iter().zip(&whole) {
        assert_eq!(s.row, w.row);
        assert_eq!(s.portals, w.portals);
        assert!(s.targets.is_empty(), "{:?} has targets", s.row.name);
    }
    assert!(whole.iter().any(|s| !s.targets.is_empty()));
    for w in &whole {
        let id = w
            .row
            .id
            .as_deref()
            .expect("an enumerated subsystem has an id");
        let one = service
            .inventory_with(None, Some(id), Depth::Targets)
            .expect("one subsystem");
        assert_eq!(one, vec![w.clone()]);
    }
    assert!(
        service
            .inventory_with(None, Some("no-such-id"), Depth::Targets)
            .expect("none")
            .is_empty()
    );
}
