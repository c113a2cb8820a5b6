// Command capi is the C ABI of aranya-quic: a thin cgo layer over package
// core, built as a shared library:
//
//	go build -buildmode=c-shared \
//	    -ldflags=-extldflags=-Wl,--version-script=$PWD/capi/exports.map \
//	    -o build/libaranya_quic.so ./capi
//
// The public header include/aranya_quic.h is hand-written and is the source
// of truth; every file here includes it in its cgo preamble and exports
// exactly its functions with its types, so drift between the two fails the
// build. The linker version script exports.map keeps every other symbol
// (cgo's _cgoexp_* and the runtime's) local; it is passed through
// -extldflags because cgo refuses -Wl,--version-script in #cgo LDFLAGS.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -Wall -Wextra -Werror
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"io"
	"log"
)

func init() {
	// quic-go reports an undersized UDP receive buffer through the standard
	// logger; a library must not write to the host's stderr unasked.
	log.SetOutput(io.Discard)
}

// main is required by -buildmode=c-shared and never runs.
func main() {}
