//! Declares the `loom` cfg used by the model test (`ci/loom.sh`), so rustc does not warn about it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
