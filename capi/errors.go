package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"unicode/utf8"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// codeOf maps an error from core (or from this package) to a return code.
// It is the one place where errors become codes.
func codeOf(err error) C.int32_t {
	var se *statusError
	switch {
	case err == nil:
		return C.ARANYA_QUIC_OK
	case errors.As(err, &se):
		return se.code
	case errors.Is(err, core.ErrWouldBlock):
		return C.ARANYA_QUIC_ERR_WOULD_BLOCK
	case errors.Is(err, core.ErrBufferTooSmall):
		return C.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL
	case errors.Is(err, core.ErrClosed):
		return C.ARANYA_QUIC_ERR_CLOSED
	case errors.Is(err, core.ErrInvalidConfig), errors.Is(err, core.ErrInvalidLabel):
		return C.ARANYA_QUIC_ERR_INVALID_ARGUMENT
	case errors.Is(err, core.ErrResolve):
		return C.ARANYA_QUIC_ERR_RESOLVE
	case errors.Is(err, core.ErrBadAddress):
		return C.ARANYA_QUIC_ERR_BAD_ADDRESS
	case errors.Is(err, core.ErrMessageTooLarge):
		return C.ARANYA_QUIC_ERR_TOO_LARGE
	case errors.Is(err, core.ErrNotAuthorized):
		return C.ARANYA_QUIC_ERR_NOT_AUTHORIZED
	case errors.Is(err, core.ErrTLS):
		return C.ARANYA_QUIC_ERR_TLS
	case errors.Is(err, core.ErrUnconfirmed):
		return C.ARANYA_QUIC_ERR_UNCONFIRMED
	case errors.Is(err, core.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return C.ARANYA_QUIC_ERR_TIMEOUT
	case errors.Is(err, core.ErrConnection):
		return C.ARANYA_QUIC_ERR_CONNECTION
	case isOSError(err):
		return C.ARANYA_QUIC_ERR_IO
	default:
		return C.ARANYA_QUIC_ERR_INTERNAL
	}
}

func isOSError(err error) bool {
	var errno syscall.Errno
	var opErr *net.OpError
	var sysErr *os.SyscallError
	var pathErr *os.PathError
	return errors.As(err, &errno) || errors.As(err, &opErr) || errors.As(err, &sysErr) || errors.As(err, &pathErr)
}

// statusError is an error this package makes, with the code it maps to.
type statusError struct {
	code C.int32_t
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func errorf(code C.int32_t, format string, args ...any) error {
	return &statusError{code: code, msg: fmt.Sprintf(format, args...)}
}

// fail records err as the calling thread's last error, prefixed with the
// function's name, and returns its code. Call it for every non-OK return.
func fail(fn string, err error) C.int32_t {
	code := codeOf(err)
	if code == C.ARANYA_QUIC_OK {
		code = C.ARANYA_QUIC_ERR_INTERNAL
	}
	setLastError(fn + ": " + err.Error())
	return code
}

// setLastError copies msg into the C thread-local buffer. The exports run
// on the calling C thread, so this is that thread's message.
func setLastError(msg string) {
	msg = cutUTF8(msg, C.AQ_LAST_ERROR_MAX-1)
	C.aq_set_last_error((*C.char)(unsafe.Pointer(unsafe.StringData(msg))), C.size_t(len(msg)))
}

// cutUTF8 cuts s to at most max bytes at a rune boundary, so that it
// stays valid UTF-8.
func cutUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// recoverPanic is deferred first by every export: a Go panic becomes
// ARANYA_QUIC_ERR_INTERNAL instead of crashing the host.
func recoverPanic(fn string, rc *C.int32_t) {
	if r := recover(); r != nil {
		*rc = fail(fn, errorf(C.ARANYA_QUIC_ERR_INTERNAL, "internal error (panic): %v", r))
	}
}
