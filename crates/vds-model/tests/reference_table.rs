//! The HRESULT table against the reference list of every VDS code (`tests/data/vds-hresults.txt`,
//! see the README beside it), and the generic codes against their documented values.

use std::collections::HashMap;
use std::path::PathBuf;

use vds_model::Hresult;

fn reference() -> Vec<(u32, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vds-hresults.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let value = parts.next().expect("value column");
            let name = parts.next().expect("name column");
            let value = u32::from_str_radix(value.trim_start_matches("0x"), 16).expect("hex value");
            (value, name.to_string())
        })
        .collect()
}

#[test]
fn every_reference_code_is_in_the_table_with_its_exact_value() {
    let reference = reference();
    assert_eq!(reference.len(), 383, "the reference lists 383 codes");
    for (value, name) in &reference {
        let hr =
            Hresult::from_name(name).unwrap_or_else(|| panic!("{name} missing from the table"));
        assert_eq!(hr.code(), *value, "{name}");
        assert_eq!(hr.name(), Some(name.as_str()));
        assert!(
            hr.description().is_some_and(|d| !d.is_empty()),
            "{name} has no description"
        );
    }
}

#[test]
fn the_table_has_no_vds_code_the_reference_lacks() {
    let reference: HashMap<String, u32> = reference().into_iter().map(|(v, n)| (n, v)).collect();
    for (hr, name, _) in Hresult::known() {
        if name.starts_with("VDS_") {
            assert_eq!(
                reference.get(name),
                Some(&hr.code()),
                "{name} is not in the reference"
            );
        }
    }
}

#[test]
fn generic_codes() {
    let rows = [
        ("S_OK", 0x0000_0000),
        ("S_FALSE", 0x0000_0001),
        ("E_NOTIMPL", 0x8000_4001),
        ("E_NOINTERFACE", 0x8000_4002),
        ("E_POINTER", 0x8000_4003),
        ("E_FAIL", 0x8000_4005),
        ("E_UNEXPECTED", 0x8000_FFFF),
        ("E_INVALIDARG", 0x8007_0057),
        ("E_OUTOFMEMORY", 0x8007_000E),
    ];
    for (name, value) in rows {
        assert_eq!(
            Hresult::from_name(name).map(Hresult::code),
            Some(value),
            "{name}"
        );
    }
    assert_eq!(Hresult::E_INVALIDARG, Hresult::from_win32(87));
    assert_eq!(Hresult::E_OUTOFMEMORY, Hresult::from_win32(14));
}
