//! Finds libaranya_quic.so and tells cargo how to link it.
//!
//! The folder is `$ARANYA_QUIC_LIB_DIR` if set, else `<repo>/build` (where
//! `make lib` puts the library).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=ARANYA_QUIC_LIB_DIR");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    // bindings/rust/aranya-quic-sys -> repo root
    let repo = manifest.join("../../..");
    let dir = match env::var_os("ARANYA_QUIC_LIB_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo.join("build"),
    };
    let dir = dir.canonicalize().unwrap_or(dir);

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let file = if target_os == "macos" {
        "libaranya_quic.dylib"
    } else {
        "libaranya_quic.so"
    };
    let lib = dir.join(file);
    if !lib.is_file() {
        panic!(
            "\n\naranya-quic-sys: {} not found.\n\
             Build the library first: run `make lib` at the repository root\n\
             ({}), or set ARANYA_QUIC_LIB_DIR to the folder holding {}.\n\n",
            lib.display(),
            repo.canonicalize().unwrap_or(repo.clone()).display(),
            file
        );
    }
    println!("cargo:rerun-if-changed={}", lib.display());

    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=aranya_quic");
    // rpath for this crate's own tests; dependents read DEP_ARANYA_QUIC_LIB_DIR
    // (from `links = "aranya_quic"`) and set theirs.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo:lib_dir={}", dir.display());
    println!(
        "cargo:include={}",
        repo.join("include").canonicalize().unwrap_or(repo.join("include")).display()
    );

    // For tests/layout.rs, which compiles a C program with the `cc` crate.
    println!("cargo:rustc-env=ARANYA_QUIC_SYS_TARGET={}", env::var("TARGET").unwrap());
    println!("cargo:rustc-env=ARANYA_QUIC_SYS_HOST={}", env::var("HOST").unwrap());
}
