package main

import (
	"os"
	"runtime/trace"
	"time"
)

func init() {
	if p := os.Getenv("AQ_TRACE"); p != "" {
		f, _ := os.Create(p)
		go func() {
			time.Sleep(2 * time.Second)
			trace.Start(f)
			time.Sleep(300 * time.Millisecond)
			trace.Stop()
			f.Close()
		}()
	}
}
