//! A provider's picture is read from the cache a page of subsystems at a time. A damaged row in a
//! later page must flag the whole provider's cache corrupt, as a damaged row anywhere did when the
//! picture was read in one go: the subsystems of the pages read before it do not answer as if
//! nothing were wrong.

use vds_model::Hresult;
use vds_service::{Service, ServiceOptions};

/// More subsystems than one page of a load (256).
const SUBSYSTEMS: i64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_row_in_a_later_page_flags_the_whole_picture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    {
        let service = Service::open(ServiceOptions {
            create: true,
            ..ServiceOptions::new(&root)
        })
        .expect("store");
        let mut settings = toml::Table::new();
        settings.insert("subsystems".into(), SUBSYSTEMS.into());
        settings.insert("portals".into(), 2.into());
        service
            .add_provider("lab", "sim", settings, true)
            .await
            .expect("sim provider");
        let rows = service.list_subsystems(None).expect("list");
        assert_eq!(rows.len() as i64, SUBSYSTEMS);
    }
    // The last subsystem's checksum no longer matches its rows.
    let db = rusqlite::Connection::open(root.join("cache.sqlite")).expect("open the cache");
    let changed = db
        .execute(
            "UPDATE subsystems SET checksum = checksum + 1
             WHERE id = (SELECT max(id) FROM subsystems)",
            [],
        )
        .expect("damage");
    assert_eq!(changed, 1);
    drop(db);

    let service = Service::open(ServiceOptions::new(&root)).expect("open");
    let e = service
        .list_subsystems(None)
        .expect_err("a damaged cache answers an error");
    assert_eq!(e.code(), Hresult::VDS_E_PROVIDER_CACHE_CORRUPT, "{e}");
    assert!(e.to_string().contains("checksum"), "says why: {e}");
}
