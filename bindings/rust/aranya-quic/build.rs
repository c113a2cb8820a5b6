//! Sets an rpath to the folder aranya-quic-sys linked libaranya_quic.so
//! from, so this crate's tests and examples run without LD_LIBRARY_PATH.
//! (A `cargo:rustc-link-arg` of aranya-quic-sys only reaches that package's
//! own binaries; its `links` metadata reaches us as DEP_ARANYA_QUIC_LIB_DIR.)
//!
//! Your own binary needs the same: either copy these lines into its build
//! script, or install the library where the loader finds it.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_ARANYA_QUIC_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_ARANYA_QUIC_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
