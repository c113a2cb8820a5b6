package core

import (
	"context"
	"time"
)

// lazyContext is a send's deadline, made into a context only when the send
// has to wait. Most sends never wait, and a timer per message would cost
// more than the rest of the send. It is used by one goroutine.
//
// Reading the clock is itself a measurable share of a small send, so the
// timeout starts counting when the send first has to wait (or write with
// a deadline), which for a send that never waits is the same.
type lazyContext struct {
	parent   context.Context
	timeout  time.Duration // <= 0: none beyond parent's
	deadline time.Time     // set on first need
	ctx      context.Context
	cancel   context.CancelFunc
	// noWait makes a send that would have to wait fail with errMustWait.
	noWait bool
}

func newLazyContext(parent context.Context, timeout time.Duration) lazyContext {
	return lazyContext{parent: parent, timeout: timeout}
}

func (l *lazyContext) ownDeadline() time.Time {
	if l.deadline.IsZero() && l.timeout > 0 {
		l.deadline = time.Now().Add(l.timeout)
	}
	return l.deadline
}

func (l *lazyContext) get() context.Context {
	if l.ctx == nil {
		if l.ownDeadline().IsZero() {
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
	if d := l.ownDeadline(); !d.IsZero() && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// writeDeadline is the instant the send must give up by: the earlier of
// the send timeout and the parent's deadline; zero for none.
func (l *lazyContext) writeDeadline() time.Time {
	d := l.ownDeadline()
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
