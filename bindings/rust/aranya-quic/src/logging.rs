//! Feature `log`: the library's log records go to the `log` crate.

use std::ffi::{c_char, c_void};

use aranya_quic_sys as sys;

use crate::config::{log_level_code, LogLevel};

/// The target of every record forwarded.
pub(crate) const TARGET: &str = "aranya_quic";

/// Points the C config at [`forward`]. `level` is the config's; `Off`
/// takes what the `log` facade currently lets through, and installs
/// nothing when that is nothing (so the library does not even format
/// records).
pub(crate) fn install(c: &mut sys::aranya_quic_config, level: LogLevel) {
    let code = match level {
        LogLevel::Off => match log::max_level() {
            log::LevelFilter::Off => return,
            log::LevelFilter::Error => sys::ARANYA_QUIC_LOG_ERROR,
            log::LevelFilter::Warn => sys::ARANYA_QUIC_LOG_WARN,
            log::LevelFilter::Info => sys::ARANYA_QUIC_LOG_INFO,
            log::LevelFilter::Debug | log::LevelFilter::Trace => sys::ARANYA_QUIC_LOG_DEBUG,
        },
        l => log_level_code(l),
    };
    c.log_level = code;
    c.log_callback = Some(forward);
    c.log_callback_user = std::ptr::null_mut();
}

fn level_of(code: u32) -> log::Level {
    match code {
        sys::ARANYA_QUIC_LOG_ERROR => log::Level::Error,
        sys::ARANYA_QUIC_LOG_WARN => log::Level::Warn,
        sys::ARANYA_QUIC_LOG_INFO => log::Level::Info,
        // DEBUG, and any finer level a later library may add.
        _ => log::Level::Debug,
    }
}

/// The log callback. Runs on library threads, several at once: it keeps
/// no state of its own (the `log` facade and loggers are thread-safe), and
/// a panicking logger is caught here, since unwinding into the library's
/// frames is undefined behaviour (and an abort in current Rust).
unsafe extern "C" fn forward(_user: *mut c_void, level: u32, msg: *const c_char, len: usize) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let level = level_of(level);
        if level > log::max_level() {
            return;
        }
        let bytes: &[u8] = if msg.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: the library passes len readable bytes, valid during
            // the call.
            unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) }
        };
        let text = String::from_utf8_lossy(bytes);
        log::log!(target: TARGET, level, "{text}");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_one_to_one() {
        assert_eq!(level_of(sys::ARANYA_QUIC_LOG_ERROR), log::Level::Error);
        assert_eq!(level_of(sys::ARANYA_QUIC_LOG_WARN), log::Level::Warn);
        assert_eq!(level_of(sys::ARANYA_QUIC_LOG_INFO), log::Level::Info);
        assert_eq!(level_of(sys::ARANYA_QUIC_LOG_DEBUG), log::Level::Debug);
        assert_eq!(level_of(99), log::Level::Debug);
    }

    #[test]
    fn the_callback_survives_bad_input() {
        // No logger is set in unit tests: records are dropped, nothing
        // crashes, whatever the pointer.
        unsafe {
            forward(std::ptr::null_mut(), sys::ARANYA_QUIC_LOG_ERROR, std::ptr::null(), 5);
            let s = b"hello\0";
            forward(std::ptr::null_mut(), sys::ARANYA_QUIC_LOG_INFO, s.as_ptr().cast(), 5);
        }
    }
}
