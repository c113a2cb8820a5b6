//go:build !aranya_cc

package main

import "time"

func diagInstall(time.Duration) { panic("-diag needs the aranya_cc build") }
func diagAdd(string, int)       {}
