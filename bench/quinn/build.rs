// The binary lives in build/bench/cargo/release; libaranya_quic.so in build/.
fn main() {
    if std::env::var_os("CARGO_FEATURE_AQ").is_some() {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN/../../..");
    }
}
