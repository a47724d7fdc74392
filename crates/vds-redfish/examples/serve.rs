//! Serves the Redfish view of a store (or, with `--sim`, of the simulator) on a loopback TCP port,
//! for trying clients by hand: `cargo run -p vds-redfish --example serve -- --sim 127.0.0.1:8000`
//! or `... -- /var/lib/vds 127.0.0.1:8000`.

use vds_redfish::Redfish;
use vds_service::{Service, ServiceOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (store, listen) = match args.as_slice() {
        [store, listen] => (store.clone(), listen.clone()),
        _ => return Err("usage: serve (--sim | STORE) ADDR:PORT".into()),
    };
    let service = if store == "--sim" {
        Service::simulator().await?
    } else {
        Service::open(ServiceOptions::new(&store))?
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("serving http://{}/redfish/v1", listener.local_addr()?);
    let router: axum::Router = Redfish::new(service).router();
    axum::serve(listener, router).await?;
    Ok(())
}
