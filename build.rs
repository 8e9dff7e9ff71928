//! Link-time layout of the `kubelet` binary (release builds on x86_64 Linux, linked by
//! rust-lld, the toolchain's default linker there).
//!
//! A running kubelet touches about 3 MiB of its ~25 MiB of code, spread over the whole
//! binary. The kernel maps file pages around every touched page (fault-around, large
//! page-cache folios), so ~13 MiB of code ended up resident. Two linker options fix that:
//!
//! - `--symbol-ordering-file`: the functions the kubelet runs (start-up, pods, probes,
//!   node API, housekeeping; recorded by `scripts/symbol-order.sh`) are placed together at
//!   the start of `.text`. Symbols missing from the file (code changed since it was
//!   recorded) keep the default placement, so a stale file costs memory, never correctness.
//! - `-z pack-relative-relocs` (RELR, glibc >= 2.36): the ~0.9 MiB relocation table that
//!   the dynamic loader reads at start becomes a few KiB.
//!
//! Set `KUBELET_RS_PLAIN_LINK=1` to link without them (another linker, older glibc).

use std::path::Path;

const ORDER_FILE: &str = "link/symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-env-changed=KUBELET_RS_PLAIN_LINK");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    let plain = std::env::var_os("KUBELET_RS_PLAIN_LINK").is_some_and(|v| v != "0");
    if !release || plain || target != "x86_64-unknown-linux-gnu" {
        return;
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let order = Path::new(&manifest_dir).join(ORDER_FILE);
    println!("cargo:rustc-link-arg-bin=kubelet=-Wl,-z,pack-relative-relocs");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=kubelet=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=kubelet=-Wl,--no-warn-symbol-ordering");
    }
}
