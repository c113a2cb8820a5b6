//! Feature `log`: the library's records reach the `log` crate, from its
//! own threads, and a panicking logger cannot unwind into the library.
#![cfg(feature = "log")]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use aranya_quic::GraphId;
use common::*;

struct Capture {
    records: Mutex<Vec<(log::Level, String, String)>>,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        let text = r.args().to_string();
        self.records.lock().unwrap_or_else(|e| e.into_inner()).push((r.level(), r.target().to_owned(), text.clone()));
        // A logger that panics must not take the process down: the
        // callback catches it before it reaches the library's frames.
        if text.contains("is down") {
            panic!("a logger that panics on disconnects");
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture { records: Mutex::new(Vec::new()) };

#[test]
fn records_go_to_the_log_crate_with_their_level_and_target() {
    // The panics of the logger below are expected: keep them out of the
    // output, and every other panic in it.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("a logger that panics") {
            hook(info);
        }
    }));
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    // log_level left Off: the endpoint takes log::max_level() (Info).
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    alice.send(b_addr, &GraphId([1; 32]), "log", b"hello").unwrap();
    let mut buf = Vec::new();
    bob.receive_vec(&mut buf, WAIT).unwrap().unwrap();
    // A close logs the disconnect, which makes the logger panic (caught).
    alice.close(b_addr).unwrap();

    let wanted = |level: log::Level, what: &str| {
        LOGGER.records.lock().unwrap().iter().any(|(l, t, m)| *l == level && t == "aranya_quic" && m.contains(what))
    };
    // Records come from library threads, possibly after the call returned.
    for _ in 0..400 {
        if wanted(log::Level::Info, "is up") && wanted(log::Level::Info, "is down") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let all = LOGGER.records.lock().unwrap().clone();
    assert!(wanted(log::Level::Info, "is up"), "no INFO record of the connection: {all:#?}");
    assert!(wanted(log::Level::Info, "is down"), "no INFO record of the disconnect: {all:#?}");
    assert!(all.iter().all(|(l, t, _)| t == "aranya_quic" && *l <= log::Level::Info), "{all:#?}");
    // The endpoint still works after the logger panicked.
    alice.send(b_addr, &GraphId([1; 32]), "log", b"again").unwrap();
    bob.receive_vec(&mut buf, WAIT).unwrap().unwrap();
    assert_eq!(buf, b"again");
}
