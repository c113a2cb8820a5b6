package main

/*
#include "aranya_quic.h"
*/
import "C"

import "syscall"

// notifyPipe is a pipe whose read end is readable exactly while a
// condition holds (messages queued, events waiting, sends may go on): a
// host polls the read end, and the library keeps one byte in the pipe
// while the condition holds.
type notifyPipe struct {
	rfd, wfd int
	filled   bool // a byte is in the pipe; only touched by set, which its owner serialises
}

func newNotifyPipe() (*notifyPipe, error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return nil, errorf(C.ARANYA_QUIC_ERR_IO, "pipe2: %v", err)
	}
	return &notifyPipe{rfd: p[0], wfd: p[1]}, nil
}

// set makes the read end readable (on) or not. The engine calls it under
// the lock that owns the condition, so calls never overlap.
func (p *notifyPipe) set(on bool) {
	var b [1]byte
	switch {
	case on && !p.filled:
		p.filled = retryEINTR(func() (int, error) { return syscall.Write(p.wfd, b[:]) })
	case !on && p.filled:
		p.filled = !retryEINTR(func() (int, error) { return syscall.Read(p.rfd, b[:]) })
	}
}

// close closes both ends; the caller detached the notifier first.
func (p *notifyPipe) close() {
	_ = syscall.Close(p.rfd)
	_ = syscall.Close(p.wfd)
}

// retryEINTR runs a one-byte read or write until it is not interrupted and
// reports whether it moved the byte.
func retryEINTR(op func() (int, error)) bool {
	for {
		n, err := op()
		if err == syscall.EINTR {
			continue
		}
		return n == 1 && err == nil
	}
}
