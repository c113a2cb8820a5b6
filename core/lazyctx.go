package core

import (
	"context"
	"time"
)

// lazyContext is a send's deadline, made into a context only when the send
// has to wait. Most sends never wait, and a timer per message would cost
// more than the rest of the send. It is used by one goroutine.
type lazyContext struct {
	parent   context.Context
	deadline time.Time // zero: none beyond parent's
	ctx      context.Context
	cancel   context.CancelFunc
}

func newLazyContext(parent context.Context, timeout time.Duration) *lazyContext {
	l := &lazyContext{parent: parent}
	if timeout > 0 {
		l.deadline = time.Now().Add(timeout)
	}
	return l
}

func (l *lazyContext) get() context.Context {
	if l.ctx == nil {
		if l.deadline.IsZero() {
			l.ctx = l.parent
		} else {
			l.ctx, l.cancel = context.WithDeadline(l.parent, l.deadline)
		}
	}
	return l.ctx
}

// err is the context's error without creating it: the parent's, or
// DeadlineExceeded once the deadline passed.
func (l *lazyContext) err() error {
	if l.ctx != nil {
		return l.ctx.Err()
	}
	if err := l.parent.Err(); err != nil {
		return err
	}
	if !l.deadline.IsZero() && !time.Now().Before(l.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// writeDeadline is the instant the send must give up by: the earlier of
// the send timeout and the parent's deadline; zero for none.
func (l *lazyContext) writeDeadline() time.Time {
	d := l.deadline
	if pd, ok := l.parent.Deadline(); ok && (d.IsZero() || pd.Before(d)) {
		d = pd
	}
	return d
}

func (l *lazyContext) release() {
	if l.cancel != nil {
		l.cancel()
	}
}
