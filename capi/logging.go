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
	// mu guards detached and calls, the calls in progress; it is never
	// held during a call, so a callback may call anything (a free of
	// another endpoint included) without waiting on it.
	mu       sync.Mutex
	idle     *sync.Cond // signalled when calls drops to 0
	detached bool
	calls    int
	// handle is the endpoint's, once registered: free refuses to free it
	// from inside its own callbacks.
	handle atomic.Uint64
}

// detach makes sure no call starts any more; with wait it also waits
// for the calls in progress to return. nil-safe.
func (l *logCallback) detach(wait bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.detached = true
	for wait && l.calls > 0 {
		if l.idle == nil {
			l.idle = sync.NewCond(&l.mu)
		}
		l.idle.Wait()
	}
}

// begin counts a call in, unless detached.
func (l *logCallback) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.detached {
		return false
	}
	l.calls++
	return true
}

func (l *logCallback) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls--
	if l.calls == 0 && l.idle != nil {
		l.idle.Broadcast()
	}
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
	if !h.to.begin() {
		return nil
	}
	defer h.to.end()
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
