//! Wireshark's iSCSI dissector as an independent judge of the PDUs we emit: capture our
//! discoveries against tgtd on `lo` (filtered to the test's own port), then decode the pcap with
//! `tshark -d tcp.port==PORT,iscsi` and require no malformed packet and no warning or error from
//! the iSCSI dissector.
//!
//! Needs tshark, tgtd and root (for the capture); a missing program fails with a message naming
//! the install script.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use iscsi_client::{ChapCredentials, DiscoveryOptions, Host, discover, probe};
use vds_testpeers::{Tgtd, TgtdConfig, require};

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tshark_decodes_every_pdu_we_send_without_warnings() {
    if let Err(e) = require(&["tshark", "tgtd", "tgtadm"]) {
        panic!("{e} (install the test peers and tshark with scripts/install-deps.sh)");
    }
    let tgtd = Tgtd::start(TgtdConfig::single()).unwrap();
    let port: u16 = tgtd.portals()[0]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    tgtd.add_targets(40, "iqn.2026-11.test.vds:ts").unwrap();
    tgtd.set_discovery_mutual("tgtout", "tgtoutpass1234")
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("discovery.pcap");
    let pcap_s = pcap.to_str().unwrap().to_owned();
    let filter = format!("tcp port {port}");
    let mut cap = Command::new("tshark")
        .args(["-i", "lo", "-f", &filter, "-F", "pcap", "-w", &pcap_s])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tshark");
    let pid = cap.id();
    // Wait until tshark says it is capturing.
    let stderr = cap.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = std::time::Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            // "Capturing on 'lo'" comes before dumpcap really captures; "Capture started"
            // after. Older tsharks print only the first: give those a moment.
            Ok(l) if l.contains("Capture started") => break,
            Ok(l) if l.contains("Capturing on") => {
                if let Ok(l2) = rx.recv_timeout(Duration::from_secs(2)) {
                    if l2.contains("Capture started") {
                        break;
                    }
                }
                break;
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = cap.wait();
                panic!("tshark exited before capturing (capturing on lo needs root)");
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "tshark did not start capturing"
        );
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let host = Host::Ipv4(Ipv4Addr::LOCALHOST);
    let plain = DiscoveryOptions::default();
    let split = DiscoveryOptions {
        max_recv_data_segment_length: 512,
        ..DiscoveryOptions::default()
    };
    let results = rt.block_on(async {
        let a = discover(&host, port, &plain).await.map(|r| r.targets.len());
        let b = discover(&host, port, &split).await.map(|r| r.targets.len());
        let c = probe(&host, port, &plain).await.map(|_| 0);
        (a, b, c)
    });
    // Now with discovery CHAP (mutual): the security-stage PDUs.
    tgtd.set_discovery_chap("discuser", "discpass12345")
        .unwrap();
    let chap = DiscoveryOptions {
        chap: Some(ChapCredentials::new("discuser", "discpass12345")),
        mutual: Some(ChapCredentials::new("tgtout", "tgtoutpass1234")),
        ..DiscoveryOptions::default()
    };
    let d = rt
        .block_on(discover(&host, port, &chap))
        .map(|r| r.targets.len());
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cap.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = cap.kill();
            let _ = cap.wait();
            panic!("tshark did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(results.0.unwrap(), 40);
    assert_eq!(results.1.unwrap(), 40);
    results.2.unwrap();
    assert_eq!(d.unwrap(), 40);

    let decode = format!("tcp.port=={port},iscsi");
    // What we sent, opcode by opcode, as Wireshark sees it.
    let ours = tshark(&[
        "-r",
        &pcap_s,
        "-d",
        &decode,
        "-Y",
        &format!("iscsi && tcp.dstport=={port}"),
        "-T",
        "fields",
        "-e",
        "iscsi.opcode",
    ]);
    let count = |op: &str| {
        ours.lines()
            .filter(|l| l.split(',').any(|o| o.trim() == op))
            .count()
    };
    let summary = tshark(&["-r", &pcap_s, "-d", &decode]);
    assert_eq!(
        count("0x03"),
        1 + 1 + 1 + 4,
        "login requests:\n{ours}\n{summary}"
    ); // 3 plain + 4 CHAP stages
    assert!(
        count("0x04") >= 3 + 5,
        "text requests (SendTargets + continuations):\n{ours}"
    );
    assert_eq!(count("0x06"), 4, "logout requests:\n{ours}");

    let bad = tshark(&[
        "-r",
        &pcap_s,
        "-d",
        &decode,
        "-Y",
        "_ws.malformed || (iscsi && _ws.expert.severity >= 0x00600000)",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
    ]);
    assert!(bad.trim().is_empty(), "tshark found problems:\n{bad}");
    let full = tshark(&["-r", &pcap_s, "-d", &decode, "-V", "-Y", "iscsi"]);
    assert!(!full.contains("Malformed"), "{full}");
    for needle in [
        "SendTargets=All",
        "SessionType=Discovery",
        "CHAP_N=discuser",
        "CHAP_C=0x",
        "MaxRecvDataSegmentLength=512",
    ] {
        assert!(full.contains(needle), "{needle} not in the decode");
    }
    tgtd.stop().unwrap();
}
