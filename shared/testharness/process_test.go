package testharness

import (
	"fmt"
	"runtime"
	"testing"
)

type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinaryFailsWithInstallHint(t *testing.T) {
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Binary(f, "voltage-no-such-server", "voltage-pkg", t.TempDir())
	}()
	<-done
	want := "voltage-no-such-server not found on PATH: install it with `apt-get install voltage-pkg`"
	if f.msg != want {
		t.Fatalf("message = %q, want %q", f.msg, want)
	}
}
