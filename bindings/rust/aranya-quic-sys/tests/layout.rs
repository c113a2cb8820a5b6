//! Proves the hand-written Rust declarations match include/aranya_quic.h:
//! compiles tests/layout.c with the system C compiler (found by the `cc`
//! crate), runs it, and compares every struct size, alignment, field offset
//! and field size, and every constant, with Rust's. Also checks that every
//! function the header declares is declared in src/lib.rs.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use aranya_quic_sys::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Compiles and runs tests/layout.c; returns its "kind name" -> value lines.
fn c_view() -> BTreeMap<String, String> {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let exe = out_dir.join("aranya_quic_layout");
    let compiler = cc::Build::new()
        .target(env!("ARANYA_QUIC_SYS_TARGET"))
        .host(env!("ARANYA_QUIC_SYS_HOST"))
        .opt_level(0)
        .cargo_metadata(false)
        .out_dir(&out_dir)
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.arg("-std=c11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(repo_root().join("include"))
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/layout.c"))
        .arg("-o")
        .arg(&exe);
    let st = cmd.status().expect("run the C compiler");
    assert!(st.success(), "compiling tests/layout.c failed: {cmd:?}");
    let out = Command::new(&exe).output().expect("run the layout program");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ' ');
        let (k, n, v) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert!(m.insert(format!("{k} {n}"), v.to_string()).is_none(), "duplicate {line}");
    }
    m
}

/// Builds Rust's view in the same shape.
fn rust_view() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    macro_rules! size {
        ($t:ident) => {
            m.insert(format!("size {}", stringify!($t)), size_of::<$t>().to_string());
            m.insert(format!("align {}", stringify!($t)), align_of::<$t>().to_string());
        };
    }
    macro_rules! field {
        ($t:ident, $($f:ident),+) => {$(
            m.insert(format!("offset {}.{}", stringify!($t), stringify!($f)),
                     offset_of!($t, $f).to_string());
            // size of the field, through a zeroed value
            let v: $t = unsafe { std::mem::zeroed() };
            m.insert(format!("fsize {}.{}", stringify!($t), stringify!($f)),
                     std::mem::size_of_val(&v.$f).to_string());
        )+};
    }
    macro_rules! constant {
        ($($c:ident),+) => {$(
            m.insert(format!("const {}", stringify!($c)), (($c) as i64).to_string());
        )+};
    }
    size!(aranya_quic_t);
    size!(aranya_quic_config);
    field!(aranya_quic_config, struct_size, bind_addr, cert_pem, cert_pem_len, key_pem,
        key_pem_len, ca_pem, ca_pem_len, max_connections, idle_timeout_ms, send_timeout_ms,
        max_message_size, max_queue_bytes, pinned_peers, pinned_peers_len, keep_alive_ms,
        drain_timeout_ms, handshake_timeout_ms, max_queue_messages, max_channels_per_peer,
        congestion_control, log_level, send_buffer_bytes, stateless_reset_key, connect_timeout_ms,
        receive_callback, receive_callback_user, max_outbound_bytes_per_peer, max_outbound_bytes,
        max_events, resolve_timeout_ms, log_callback, log_callback_user, team_authorization);
    size!(aranya_quic_channel);
    field!(aranya_quic_channel, addr, kind, sync_type, team_id, label, label_len, peer_id);
    size!(aranya_quic_stats);
    field!(aranya_quic_stats, struct_size, open_connections, dials, accepts, evictions,
        handshake_failures, open_streams, messages_sent, bytes_sent, messages_received,
        bytes_received, queue_messages, queue_bytes, streams_reset, connections_lost,
        congestion_control, messages_unconfirmed, outbound_messages, outbound_bytes, sends_failed,
        events_dropped, connections_revoked, messages_revoked, streams_refused);
    size!(aranya_quic_message);
    field!(aranya_quic_message, channel, offset, len);
    size!(aranya_quic_buf);
    field!(aranya_quic_buf, data, len);
    size!(aranya_quic_event);
    field!(aranya_quic_event, struct_size, type_, error_code, id, addr, peer_id, channel,
        unconfirmed, dropped_before, reason);
    size!(aranya_quic_connection_info);
    field!(aranya_quic_connection_info, struct_size, dialed, draining, addr, peer_id,
        connected_unix_ms, connected_ms, smoothed_rtt_us, min_rtt_us, latest_rtt_us,
        congestion_window, bytes_in_flight, packets_sent, packets_received, packets_lost,
        messages_sent, bytes_sent, messages_received, bytes_received, congestion_control);
    constant!(ARANYA_QUIC_VERSION_MAJOR, ARANYA_QUIC_VERSION_MINOR, ARANYA_QUIC_VERSION_PATCH,
        ARANYA_QUIC_VERSION_NUMBER, ARANYA_QUIC_TEAM_ID_LEN, ARANYA_QUIC_LABEL_MAX,
        ARANYA_QUIC_ADDR_MAX, ARANYA_QUIC_PEER_ID_LEN, ARANYA_QUIC_PEER_ADDR_MAX, ARANYA_QUIC_FINGERPRINT_LEN,
        ARANYA_QUIC_RESET_KEY_LEN, ARANYA_QUIC_OK, ARANYA_QUIC_ERR_WOULD_BLOCK,
        ARANYA_QUIC_ERR_BUFFER_TOO_SMALL, ARANYA_QUIC_ERR_INVALID_ARGUMENT,
        ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED, ARANYA_QUIC_ERR_TIMEOUT,
        ARANYA_QUIC_ERR_TOO_LARGE, ARANYA_QUIC_ERR_CONNECTION, ARANYA_QUIC_ERR_TLS,
        ARANYA_QUIC_ERR_INTERNAL, ARANYA_QUIC_ERR_BAD_ADDRESS, ARANYA_QUIC_ERR_IO,
        ARANYA_QUIC_ERR_UNCONFIRMED, ARANYA_QUIC_ERR_RESOLVE, ARANYA_QUIC_ERR_NOT_AUTHORIZED,
        ARANYA_QUIC_KIND_CHANNEL, ARANYA_QUIC_KIND_SYNC, ARANYA_QUIC_CC_DEFAULT,
        ARANYA_QUIC_CC_RENO, ARANYA_QUIC_CC_BBR2, ARANYA_QUIC_LOG_OFF, ARANYA_QUIC_LOG_ERROR,
        ARANYA_QUIC_LOG_WARN, ARANYA_QUIC_LOG_INFO, ARANYA_QUIC_LOG_DEBUG,
        ARANYA_QUIC_DEFAULT_MAX_CONNECTIONS, ARANYA_QUIC_DEFAULT_IDLE_TIMEOUT_MS,
        ARANYA_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS, ARANYA_QUIC_DEFAULT_SEND_TIMEOUT_MS,
        ARANYA_QUIC_DEFAULT_DRAIN_TIMEOUT_MS, ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS,
        ARANYA_QUIC_DEFAULT_MAX_MESSAGE_SIZE,
        ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES, ARANYA_QUIC_DEFAULT_MAX_QUEUE_MESSAGES,
        ARANYA_QUIC_DEFAULT_MAX_CHANNELS_PER_PEER, ARANYA_QUIC_DEFAULT_SEND_BUFFER_BYTES,
        ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT, ARANYA_QUIC_DISABLED,
        ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER, ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES,
        ARANYA_QUIC_DEFAULT_MAX_EVENTS, ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS,
        ARANYA_QUIC_EVENT_PEER_CONNECTED, ARANYA_QUIC_EVENT_PEER_DISCONNECTED,
        ARANYA_QUIC_EVENT_SEND_FAILED, ARANYA_QUIC_EVENT_CLOSE_FINISHED,
        ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED, ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED,
        ARANYA_QUIC_UNKNOWN, ARANYA_QUIC_KNOWN_PEERS_MAX);
    m.insert("str ARANYA_QUIC_VERSION_STRING".into(), ARANYA_QUIC_VERSION_STRING.into());
    m
}

#[test]
fn layouts_and_constants_match_the_c_header() {
    let c = c_view();
    let r = rust_view();
    let mut diffs = Vec::new();
    for (k, cv) in &c {
        match r.get(k) {
            Some(rv) if rv == cv => {}
            Some(rv) => diffs.push(format!("{k}: C {cv}, Rust {rv}")),
            None => diffs.push(format!("{k}: C {cv}, not checked on the Rust side")),
        }
    }
    for k in r.keys() {
        if !c.contains_key(k) {
            diffs.push(format!("{k}: Rust only, missing from tests/layout.c"));
        }
    }
    assert!(diffs.is_empty(), "Rust and C disagree:\n{}", diffs.join("\n"));
    // Enough was compared to mean something.
    assert!(c.len() >= 270, "only {} items compared", c.len());
}

/// Every `#define ARANYA_QUIC_*` of the header appears in tests/layout.c
/// (so a constant added to the header cannot be missed by the test above),
/// and every function the header declares is declared in src/lib.rs.
#[test]
fn every_header_item_is_covered() {
    let header = std::fs::read_to_string(repo_root().join("include/aranya_quic.h")).unwrap();
    let layout_c =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/layout.c"))
            .unwrap();
    let lib_rs =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
            .unwrap();
    let mut missing = Vec::new();
    let mut nconst = 0;
    let mut nfn = 0;
    for line in header.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("#define ARANYA_QUIC_") {
            let name = format!("ARANYA_QUIC_{}", rest.split_whitespace().next().unwrap());
            if name == "ARANYA_QUIC_H" {
                continue;
            }
            nconst += 1;
            if !layout_c.contains(&format!("({name})")) && !layout_c.contains(&format!(" {name} ")) {
                missing.push(format!("constant {name} not in tests/layout.c"));
            }
            if !lib_rs.contains(&format!("pub const {name}:")) {
                missing.push(format!("constant {name} not in src/lib.rs"));
            }
        }
        // Function declarations: "<type> aranya_quic_xxx(" at the start of a line.
        if line.starts_with("int32_t aranya_quic_") || line.starts_with("const char *aranya_quic_") {
            let start = line.find("aranya_quic_").unwrap();
            let name = &line[start..line[start..].find('(').unwrap() + start];
            nfn += 1;
            if !lib_rs.contains(&format!("pub fn {name}(")) {
                missing.push(format!("function {name} not in src/lib.rs"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(nconst >= 58, "found only {nconst} constants in the header");
    assert!(nfn >= 33, "found only {nfn} functions in the header");
}

#[test]
fn library_version_matches_header() {
    let v = unsafe { std::ffi::CStr::from_ptr(aranya_quic_version()) };
    assert_eq!(v.to_str().unwrap(), ARANYA_QUIC_VERSION_STRING);
}

#[test]
fn config_init_sets_struct_size() {
    let size = size_of::<aranya_quic_config>();
    let mut cfg = aranya_quic_config { max_connections: 7, ..Default::default() };
    let rc = unsafe { aranya_quic_config_init_sized(&mut cfg, size) };
    assert_eq!(rc, ARANYA_QUIC_OK);
    assert_eq!(cfg.struct_size as usize, size);
    assert_eq!(cfg.max_connections, 0);
    assert_eq!(unsafe { aranya_quic_config_init_sized(std::ptr::null_mut(), size) }, ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    // The plain symbol, for programs built against older headers, writes
    // no field added with the non-blocking calls.
    let mut cfg = aranya_quic_config { max_events: 9, ..Default::default() };
    assert_eq!(unsafe { aranya_quic_config_init(&mut cfg) }, ARANYA_QUIC_OK);
    assert_eq!(cfg.struct_size as usize, std::mem::offset_of!(aranya_quic_config, max_outbound_bytes_per_peer));
    assert_eq!(cfg.max_events, 9);
    assert_eq!(unsafe { aranya_quic_config_init(std::ptr::null_mut()) }, ARANYA_QUIC_ERR_INVALID_ARGUMENT);
}

#[test]
fn non_blocking_calls_check_their_arguments() {
    // Handle 0 is never valid; free_nowait of it is harmless, as free is.
    assert_eq!(unsafe { aranya_quic_free_nowait(0) }, ARANYA_QUIC_OK);
    let mut ev = aranya_quic_event::default();
    assert_eq!(ev.struct_size as usize, size_of::<aranya_quic_event>());
    assert_eq!(unsafe { aranya_quic_next_event(0, &mut ev) }, ARANYA_QUIC_ERR_INVALID_HANDLE);
    let mut id = 0u64;
    assert_eq!(unsafe { aranya_quic_shutdown(0, &mut id) }, ARANYA_QUIC_ERR_INVALID_HANDLE);
    let mut fd = -1;
    assert_eq!(unsafe { aranya_quic_send_fd(0, &mut fd) }, ARANYA_QUIC_ERR_INVALID_HANDLE);
    assert_eq!(unsafe { aranya_quic_event_fd(0, &mut fd) }, ARANYA_QUIC_ERR_INVALID_HANDLE);
    let s = unsafe { std::ffi::CStr::from_ptr(aranya_quic_strerror(ARANYA_QUIC_ERR_RESOLVE)) };
    assert_ne!(s.to_str().unwrap(), "unknown error code");
}

#[test]
fn trust_calls_check_their_arguments() {
    let id = [1u8; ARANYA_QUIC_PEER_ID_LEN];
    let team = [2u8; ARANYA_QUIC_TEAM_ID_LEN];
    let pem = b"-----BEGIN CERTIFICATE-----\n";
    let mut n = 0usize;
    unsafe {
        assert_eq!(aranya_quic_team_allow(0, id.as_ptr(), team.as_ptr()), ARANYA_QUIC_ERR_INVALID_HANDLE);
        let mut last = 7u32;
        assert_eq!(aranya_quic_team_revoke(0, id.as_ptr(), team.as_ptr(), &mut last), ARANYA_QUIC_ERR_INVALID_HANDLE);
        assert_eq!(last, 7, "out_last_team is written only on success");
        assert_eq!(aranya_quic_team_revoke(0, id.as_ptr(), team.as_ptr(), std::ptr::null_mut()), ARANYA_QUIC_ERR_INVALID_HANDLE);
        assert_eq!(aranya_quic_connections(0, std::ptr::null_mut(), 0, size_of::<aranya_quic_connection_info>(), &mut n), ARANYA_QUIC_ERR_INVALID_HANDLE);
        // The header does not say whether the handle or the PEM is checked
        // first: either refusal will do, as long as nothing succeeds.
        let mut ids = [0u8; 2 * ARANYA_QUIC_PEER_ID_LEN];
        n = 7;
        let rc = aranya_quic_set_trust(0, pem.as_ptr(), pem.len(), std::ptr::null(), 0, ids.as_mut_ptr(), 2, &mut n);
        assert!(rc == ARANYA_QUIC_ERR_INVALID_HANDLE || rc == ARANYA_QUIC_ERR_INVALID_ARGUMENT, "{rc}");
        assert_eq!((n, ids), (7, [0; 2 * ARANYA_QUIC_PEER_ID_LEN]), "a refused call writes nothing");
        // A NULL id buffer is refused when room is claimed for it; with no
        // room (and out_revoked NULL, as the header allows) the call gets
        // as far as the handle or the PEM.
        let rc = aranya_quic_set_trust(0, pem.as_ptr(), pem.len(), std::ptr::null(), 0, std::ptr::null_mut(), 1, &mut n);
        assert!(rc == ARANYA_QUIC_ERR_INVALID_HANDLE || rc == ARANYA_QUIC_ERR_INVALID_ARGUMENT, "{rc}");
        let rc = aranya_quic_set_trust(0, pem.as_ptr(), pem.len(), std::ptr::null(), 0, std::ptr::null_mut(), 0, std::ptr::null_mut());
        assert!(rc == ARANYA_QUIC_ERR_INVALID_HANDLE || rc == ARANYA_QUIC_ERR_INVALID_ARGUMENT, "{rc}");
        let rc = aranya_quic_set_identity(0, pem.as_ptr(), pem.len(), pem.as_ptr(), pem.len());
        assert!(rc == ARANYA_QUIC_ERR_INVALID_HANDLE || rc == ARANYA_QUIC_ERR_INVALID_ARGUMENT, "{rc}");
        let mut out = [0u8; ARANYA_QUIC_PEER_ID_LEN];
        assert_eq!(aranya_quic_peer_id_from_pem(std::ptr::null(), 0, out.as_mut_ptr()), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
        assert_eq!(aranya_quic_peer_id_from_pem(pem.as_ptr(), pem.len(), out.as_mut_ptr()), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    }
    assert_eq!(aranya_quic_connection_info::default().struct_size as usize, size_of::<aranya_quic_connection_info>());
    let s = unsafe { std::ffi::CStr::from_ptr(aranya_quic_strerror(ARANYA_QUIC_ERR_NOT_AUTHORIZED)) };
    assert_ne!(s.to_str().unwrap(), "unknown error code");
}
