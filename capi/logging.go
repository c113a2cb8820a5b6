package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// logCallback is the config's log_callback with its user pointer.
type logCallback struct {
	fn   C.aranya_quic_log_callback
	user unsafe.Pointer
	// mu is held shared by each call in progress; detach takes it
	// exclusively, so that once detach returns no call runs or starts.
	mu       sync.RWMutex
	detached bool
	// handle is the endpoint's, once registered: free refuses to free it
	// from inside its own callbacks.
	handle atomic.Uint64
}

// detach stops the callbacks; nil-safe.
func (l *logCallback) detach() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.detached = true
	l.mu.Unlock()
}

// callbackHandler is a slog.Handler that passes each record, as one line
// of text, to the host's log callback.
type callbackHandler struct {
	to     *logCallback
	min    slog.Level
	prefix string // rendered attributes of WithAttrs, with their groups
	group  string
}

func (h *callbackHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h *callbackHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	b.WriteByte(0)
	text := b.String()
	h.to.mu.RLock()
	defer h.to.mu.RUnlock()
	if h.to.detached {
		return nil
	}
	// The C side reads the text only during the call, and the string
	// holds no Go pointers, so it is passed in place.
	C.aq_log(h.to.fn, h.to.user, C.aranya_quic_t(h.to.handle.Load()), levelCode(r.Level),
		(*C.char)(unsafe.Pointer(unsafe.StringData(text))), C.size_t(len(text)-1))
	return nil
}

func (h *callbackHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	c := *h
	c.prefix = b.String()
	return &c
}

func (h *callbackHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	fmt.Fprintf(b, " %s%s=%v", group, a.Key, a.Value.Resolve())
}

// levelCode maps a slog level to the header's ARANYA_QUIC_LOG_* value.
func levelCode(l slog.Level) C.uint32_t {
	switch {
	case l >= slog.LevelError:
		return C.ARANYA_QUIC_LOG_ERROR
	case l >= slog.LevelWarn:
		return C.ARANYA_QUIC_LOG_WARN
	case l >= slog.LevelInfo:
		return C.ARANYA_QUIC_LOG_INFO
	default:
		return C.ARANYA_QUIC_LOG_DEBUG
	}
}
